package dev.eddy.bench;

/** What a window case emits per (key, window), engine_bench's {@code WindowResult}. */
public class WindowResult {
  public long key;
  public long start;
  public long end;
  public long count;
  public long sum;

  public WindowResult() {}
}
