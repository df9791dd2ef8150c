# MPI suites: each runs under mpiexec with P = 2, 3, 4 and 8 ranks
# (oversubscribed where P exceeds the cores; one OpenMP thread per rank).
# Open MPI refuses to start as root without --allow-run-as-root; the flag is
# passed where the configuring user is root.
if(TARGET robustagg_mpi)
  find_package(MPI COMPONENTS C QUIET) # imported targets are per directory
endif()
if(TARGET robustagg_mpi AND MPIEXEC_EXECUTABLE)
  add_executable(test_mpi_collectives test_mpi_collectives.cc test_mpi_main.cc)
  target_include_directories(test_mpi_collectives PRIVATE ${PROJECT_SOURCE_DIR}/host)
  target_link_libraries(test_mpi_collectives PRIVATE robustagg_mpi robustagg MPI::MPI_C GTest::gtest)
  target_compile_options(test_mpi_collectives PRIVATE ${RAGG_WARN_FLAGS})
  # the C API only: no MPI C++ bindings
  target_compile_definitions(test_mpi_collectives PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)

  set(RAGG_MPIEXEC_FLAGS --oversubscribe)
  execute_process(COMMAND id -u OUTPUT_VARIABLE _ragg_uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_ragg_uid STREQUAL "0")
    list(APPEND RAGG_MPIEXEC_FLAGS --allow-run-as-root)
  endif()
  foreach(np 2 3 4 8)
    add_test(NAME test_mpi_collectives_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${RAGG_MPIEXEC_FLAGS}
                     ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_mpi_collectives> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(test_mpi_collectives_np${np} PROPERTIES
      LABELS mpi TIMEOUT 300 PROCESSORS ${np}
      ENVIRONMENT "OMP_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0")  # Open MPI leaks at exit
  endforeach()
  # Allocation failure in the MPI collectives, at one rank (the sanitizers
  # interpose malloc themselves).
  if(NOT RAGG_SANITIZE)
    add_executable(test_mpi_alloc_failure test_mpi_alloc_failure.cc test_mpi_main.cc)
    target_link_libraries(test_mpi_alloc_failure PRIVATE robustagg_mpi robustagg ragg_oracle
                          MPI::MPI_C GTest::gtest)
    target_compile_options(test_mpi_alloc_failure PRIVATE ${RAGG_WARN_FLAGS})
    target_compile_definitions(test_mpi_alloc_failure PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
    add_test(NAME test_mpi_alloc_failure_np1
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 1 ${RAGG_MPIEXEC_FLAGS}
                     ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_mpi_alloc_failure> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(test_mpi_alloc_failure_np1 PROPERTIES LABELS mpi TIMEOUT 300)
  endif()
  # The same suite through a caller's transport (robustagg_transport.h) whose
  # callbacks move bytes over MPI: checked against the reference and, bit for
  # bit, against the MPI engine.
  foreach(np 2 3 4)
    add_test(NAME test_transport_collectives_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${RAGG_MPIEXEC_FLAGS}
                     ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_mpi_collectives> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(test_transport_collectives_np${np} PROPERTIES
      LABELS mpi TIMEOUT 300 PROCESSORS ${np}
      ENVIRONMENT "OMP_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=0;RAGG_TEST_ENGINE=transport")
  endforeach()
endif()
