# GPU suites: the CUDA backend against the CPU backend, and the device build
# of the shared solver against its host build. They skip (GTEST_SKIP) where
# no CUDA device exists, and always compile where nvcc does.
if(RAGG_ENABLE_CUDA)
  ragg_add_test(test_cuda_backend SOURCES test_cuda_backend.cc LABELS gpu)
  target_link_libraries(test_cuda_backend PRIVATE CUDA::cudart_static)

  # The solver check reaches internal symbols: it links the objects of the
  # core and the CUDA backend directly rather than through librobustagg.
  ragg_add_test(test_cuda_solver SOURCES test_cuda_solver.cc LABELS gpu)
  target_link_libraries(test_cuda_solver PRIVATE ragg_core ragg_cuda CUDA::cudart_static)
  target_include_directories(test_cuda_solver PRIVATE
    ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/kernels)
endif()
if(RAGG_ENABLE_CUDA)
  # Without a device every case skips: ctest then reports the suites as skipped, not passed.
  set_tests_properties(test_cuda_backend test_cuda_solver PROPERTIES
    SKIP_REGULAR_EXPRESSION "no CUDA device")
endif()
