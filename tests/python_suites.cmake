# The Python package's pytest suite, run against the library just built.
find_package(Python3 COMPONENTS Interpreter)
option(RAGG_PYTHON_TESTS "Run the Python package's pytest suite from CTest" ON)
if(RAGG_PYTHON_TESTS AND Python3_Interpreter_FOUND)
  add_test(NAME python_pytest
           COMMAND ${Python3_EXECUTABLE} -m pytest -q -ra ${PROJECT_SOURCE_DIR}/python/tests
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/python)
  set_tests_properties(python_pytest PROPERTIES
    ENVIRONMENT "RAGG_LIBRARY=$<TARGET_FILE:robustagg>;OMP_NUM_THREADS=1"
    LABELS "python;cpu;slow" TIMEOUT 1500
    PROCESSORS 4)  # the DDP hook suite trains with 4 processes, as the MPI suites declare theirs
endif()
