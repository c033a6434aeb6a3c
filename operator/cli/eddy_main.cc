#include <cstdio>
int main() { std::puts("eddy"); return 0; }
