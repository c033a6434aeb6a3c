# eddy_add_test(NAME name SOURCES a.cc b.cc LABELS unit|integration [LIBS x y])
# One helper so that every test is a GoogleTest binary registered with ctest and a label.
find_package(GTest REQUIRED)
include(GoogleTest)
function(eddy_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${T_NAME} PRIVATE EDDY_SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}"
                                                EDDY_BINARY_DIR_DEFAULT="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS "${T_LABELS}"
               ENVIRONMENT "EDDY_SOURCE_DIR=${PROJECT_SOURCE_DIR};EDDY_BINARY_DIR=${PROJECT_BINARY_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()
