# Test suites, registered through ragg_add_test (tests/CMakeLists.txt).
ragg_add_test(test_oracle SOURCES test_oracle.cc LABELS cpu)
ragg_add_test(test_api SOURCES test_api.cc LABELS cpu)
ragg_add_test(test_mean SOURCES test_mean.cc LABELS cpu)
ragg_add_test(test_coordinate SOURCES test_coordinate.cc LABELS cpu)
ragg_add_test(test_krum SOURCES test_krum.cc LABELS cpu)
ragg_add_test(test_bulyan SOURCES test_bulyan.cc LABELS cpu)
ragg_add_test(test_geomed SOURCES test_geomed.cc LABELS cpu)
ragg_add_test(test_brute SOURCES test_brute.cc LABELS cpu)
ragg_add_test(test_centered_clip SOURCES test_centered_clip.cc LABELS cpu)
ragg_add_test(test_monna SOURCES test_monna.cc LABELS cpu)
ragg_add_test(test_caf SOURCES test_caf.cc LABELS cpu)
ragg_add_test(test_smea SOURCES test_smea.cc LABELS cpu)
# The shared solver's eigensolver on its own: librobustagg does not export it,
# so the test compiles the solver's helper file itself, as the library does.
ragg_add_test(test_eigen SOURCES test_eigen.cc ${PROJECT_SOURCE_DIR}/host/solver/linalg.c LABELS cpu)
target_compile_options(test_eigen PRIVATE -ffp-contract=off)
target_include_directories(test_eigen PRIVATE ${PROJECT_SOURCE_DIR}/host)
find_package(OpenMP REQUIRED COMPONENTS CXX)
# The parallel subset search (Brute, SMEA) and its unranking, likewise.
ragg_add_test(test_subsets SOURCES test_subsets.cc ${PROJECT_SOURCE_DIR}/host/rules/brute.c
              ${PROJECT_SOURCE_DIR}/host/rules/subsets.c ${PROJECT_SOURCE_DIR}/host/solver/linalg.c
              LABELS cpu)
target_include_directories(test_subsets PRIVATE ${PROJECT_SOURCE_DIR}/host)
target_link_libraries(test_subsets PRIVATE OpenMP::OpenMP_C OpenMP::OpenMP_CXX)
# Suites that reach the library's internal symbols: linked from the library's
# objects (with the CUDA backend's, where it is built, which the API objects
# call into).
function(ragg_add_core_test name)
  add_executable(${name} ${name}.cc $<TARGET_OBJECTS:ragg_core>)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/host ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PRIVATE OpenMP::OpenMP_C OpenMP::OpenMP_CXX m GTest::gtest
                        GTest::gtest_main)
  if(TARGET ragg_cuda)
    target_link_libraries(${name} PRIVATE ragg_cuda)
  endif()
  target_compile_options(${name} PRIVATE ${RAGG_WARN_FLAGS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS cpu TIMEOUT 900)
endfunction()
# The CPU Gram pass on its own.
ragg_add_core_test(test_gram)
# The shared solver's presolved contract (the CUDA backend's row-parallel
# work, run here on the CPU in shuffled row order).
ragg_add_core_test(test_presolve)
ragg_add_test(test_preagg SOURCES test_preagg.cc LABELS cpu)
ragg_add_test(test_properties SOURCES test_properties.cc LABELS cpu)
ragg_add_test(test_large SOURCES test_large.cc LABELS cpu slow)
ragg_add_test(test_determinism SOURCES test_determinism.cc LABELS cpu)
target_link_libraries(test_determinism PRIVATE OpenMP::OpenMP_CXX)
if(NOT RAGG_SANITIZE) # the sanitizers interpose malloc themselves
  ragg_add_test(test_alloc_failure SOURCES test_alloc_failure.cc LABELS cpu)
endif()
