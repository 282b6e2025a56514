# Helpers in the spirit of Abseil's absl_cc_library / absl_cc_test.

# switchboard_library(NAME name SRCS ... DEPS ...)
function(switchboard_library)
  cmake_parse_arguments(SB "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${SB_NAME} STATIC ${SB_SRCS})
  target_include_directories(${SB_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${SB_NAME} PRIVATE ${SWITCHBOARD_WARNINGS})
  target_link_libraries(${SB_NAME} PUBLIC ${SB_DEPS})
endfunction()

# switchboard_binary(NAME name SRCS ... DEPS ...)
function(switchboard_binary)
  cmake_parse_arguments(SB "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${SB_NAME} ${SB_SRCS})
  target_compile_options(${SB_NAME} PRIVATE ${SWITCHBOARD_WARNINGS})
  target_link_libraries(${SB_NAME} PRIVATE ${SB_DEPS})
endfunction()

# switchboard_test(NAME name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s] [PROCESS_PER_TEST])
# PROCESS_PER_TEST: every gtest test runs in a process of its own, as CTest test
# NAME.Suite.Test (listed from the binary after each build), for tests of a library whose
# state is process-wide and outlives one test (gRPC's XdsClient).
include(GoogleTest)
function(switchboard_test)
  cmake_parse_arguments(SB "PROCESS_PER_TEST" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${SB_NAME} ${SB_SRCS})
  target_compile_options(${SB_NAME} PRIVATE ${SWITCHBOARD_WARNINGS})
  target_link_libraries(${SB_NAME} PRIVATE ${SB_DEPS} GTest::gtest_main GTest::gmock)
  set_target_properties(${SB_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT SB_TIMEOUT)
    set(SB_TIMEOUT 120)
  endif()
  # Sanitizer builds (Debug, instrumented) run several times slower: four times the time.
  if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=(address|thread)")
    math(EXPR SB_TIMEOUT "${SB_TIMEOUT} * 4")
  endif()
  if(SB_PROCESS_PER_TEST)
    # One label at most here: a list would be split into properties.
    set(properties TIMEOUT ${SB_TIMEOUT} ENVIRONMENT "SWITCHBOARD_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
    if(SB_LABELS)
      list(APPEND properties LABELS ${SB_LABELS})
    endif()
    if("integration" IN_LIST SB_LABELS)
      list(APPEND properties RESOURCE_LOCK loopback_fleet)
    endif()
    gtest_discover_tests(${SB_NAME} TEST_PREFIX "${SB_NAME}." PROPERTIES ${properties})
    return()
  endif()
  add_test(NAME ${SB_NAME} COMMAND ${SB_NAME})
  set_tests_properties(${SB_NAME} PROPERTIES TIMEOUT ${SB_TIMEOUT}
    ENVIRONMENT "SWITCHBOARD_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
  if(SB_LABELS)
    set_tests_properties(${SB_NAME} PROPERTIES LABELS "${SB_LABELS}")
  endif()
  # An integration test starts a whole fleet of processes on loopback; two at once on a
  # 2-core machine under ThreadSanitizer starve each other past their deadlines. They
  # take turns; unit tests still run beside them.
  if("integration" IN_LIST SB_LABELS)
    set_tests_properties(${SB_NAME} PROPERTIES RESOURCE_LOCK loopback_fleet)
  endif()
endfunction()
