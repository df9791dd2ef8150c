# The NCCL drop-in's dispatch and group queueing against a fake pnccl* table:
# runs everywhere (no GPU, no NCCL needed).
ragg_add_test(test_nccl_shim
  SOURCES test_nccl_shim.cc ${PROJECT_SOURCE_DIR}/host/dist/nccl_shim.c LABELS cpu)
target_include_directories(test_nccl_shim PRIVATE ${PROJECT_SOURCE_DIR}/host/dist)
