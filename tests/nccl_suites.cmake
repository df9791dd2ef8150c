# The NCCL drop-in's dispatch and group queueing against a fake pnccl* table:
# runs everywhere (no GPU, no NCCL needed).
ragg_add_test(test_nccl_shim
  SOURCES test_nccl_shim.cc ${PROJECT_SOURCE_DIR}/host/dist/nccl_shim.c LABELS cpu)
target_include_directories(test_nccl_shim PRIVATE ${PROJECT_SOURCE_DIR}/host/dist)

# The device path of the distributed algorithm with P > 1 ranks as threads on
# one GPU (no NCCL): links the internal objects directly, as test_cuda_solver does.
if(TARGET ragg_dist_cuda)
  ragg_add_test(test_nccl_algorithm SOURCES test_nccl_algorithm.cc LABELS gpu)
  target_link_libraries(test_nccl_algorithm PRIVATE ragg_dist_cuda ragg_core ragg_cuda CUDA::cudart_static)
  target_include_directories(test_nccl_algorithm PRIVATE ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/host/dist)
  set_tests_properties(test_nccl_algorithm PROPERTIES SKIP_REGULAR_EXPRESSION "no CUDA device")
endif()

# librobustagg_nccl on a real communicator, and the drop-in under LD_PRELOAD.
# These programs link libnccl themselves (the libraries never do).
if(TARGET robustagg_nccl)
  find_library(RAGG_NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR}/..)
  if(RAGG_NCCL_LIBRARY)
    ragg_add_test(test_nccl_collectives SOURCES test_nccl_collectives.cc LABELS gpu)
    target_link_libraries(test_nccl_collectives PRIVATE robustagg_nccl ${RAGG_NCCL_LIBRARY} CUDA::cudart)
    target_include_directories(test_nccl_collectives PRIVATE ${PROJECT_SOURCE_DIR}/host)

    ragg_add_test(test_nccl_preload SOURCES test_nccl_preload.cc LABELS gpu)
    target_link_libraries(test_nccl_preload PRIVATE ${RAGG_NCCL_LIBRARY} CUDA::cudart ${CMAKE_DL_LIBS})
    target_include_directories(test_nccl_preload PRIVATE ${PROJECT_SOURCE_DIR}/host ${RAGG_NCCL_INCLUDE_DIR})
    add_dependencies(test_nccl_preload robustagg_nccl_preload)
    set_tests_properties(test_nccl_preload PROPERTIES ENVIRONMENT
      "LD_PRELOAD=$<TARGET_FILE:robustagg_nccl_preload>;RAGG_RULE=median;RAGG_F=0;RAGG_MODE=sharded;RAGG_MIN_BYTES=4096;RAGG_DEBUG=INFO")
    set_tests_properties(test_nccl_collectives test_nccl_preload PROPERTIES SKIP_REGULAR_EXPRESSION "no CUDA device")
  else()
    message(STATUS "robustagg: libnccl not found, the NCCL tests are not built")
  endif()
endif()
