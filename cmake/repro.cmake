# Helpers shared by every CMakeLists.txt in the tree.

# repro_add_test(NAME SOURCES... [LIBS lib...] [LABELS label...] [TIMEOUT s])
# Declares a GoogleTest binary and registers it with CTest, so adding a test is one line.
# Tests find the built binaries through REPRO_BIN_DIR / REPRO_LIB_DIR and fixtures through
# REPRO_SOURCE_DIR.
function(repro_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} repro_testutil GTest::gtest GTest::gmock
                        GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${ARG_TIMEOUT}
    LABELS "${ARG_LABELS}"
    ENVIRONMENT "REPRO_BIN_DIR=${CMAKE_BINARY_DIR}/bin;REPRO_LIB_DIR=${CMAKE_BINARY_DIR}/lib;REPRO_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# repro_unsanitized(target...)
# Strips the -fsanitize flags that REPRO_SANITIZE / REPRO_FUZZ added to every target from these
# (used for the LD_PRELOAD shim, which runs inside uninstrumented programs), and TSan's Abseil
# interposer (CMakeLists.txt). Targets that do not exist are skipped.
function(repro_unsanitized)
  foreach(target ${ARGN})
    if(NOT TARGET ${target})
      continue()
    endif()
    foreach(property COMPILE_OPTIONS LINK_OPTIONS LINK_LIBRARIES)
      get_target_property(options ${target} ${property})
      if(options)
        list(FILTER options EXCLUDE REGEX "^-f(no-)?sanitize|repro_tsan_absl_sync")
        set_target_properties(${target} PROPERTIES ${property} "${options}")
      endif()
    endforeach()
  endforeach()
endfunction()
