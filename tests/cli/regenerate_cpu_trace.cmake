# Regenerates traces/data/cpu_trace.csv from its spec file and fails if the bytes differ.
execute_process(COMMAND ${CLI} trace gen --spec ${SRC}/traces/data/cpu_trace.json --out ${OUT}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "twinfer trace gen failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${SRC}/traces/data/cpu_trace.csv RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "${OUT} differs from traces/data/cpu_trace.csv")
endif()
