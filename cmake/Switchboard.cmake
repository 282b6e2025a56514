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

# switchboard_test(NAME name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s])
function(switchboard_test)
  cmake_parse_arguments(SB "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${SB_NAME} ${SB_SRCS})
  target_compile_options(${SB_NAME} PRIVATE ${SWITCHBOARD_WARNINGS})
  target_link_libraries(${SB_NAME} PRIVATE ${SB_DEPS} GTest::gtest_main GTest::gmock)
  set_target_properties(${SB_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${SB_NAME} COMMAND ${SB_NAME})
  if(NOT SB_TIMEOUT)
    set(SB_TIMEOUT 120)
  endif()
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
