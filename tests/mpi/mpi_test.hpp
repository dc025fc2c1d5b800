// Shared by the MPI tests (run as `mpirun -np N test_mpi`): a fixture whose verdict is the
// same on every rank, and the world communicator's rank/size.
#pragma once
#include <gtest/gtest.h>
#include <mpi.h>

namespace splitpipe::testing {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Only rank 0 prints the gtest report, so a failure seen by another rank alone must also fail
// the test on rank 0: TearDown agrees on "did any rank fail" collectively. Tests must therefore
// keep their collective calls unconditional (use EXPECT_*, not early-returning ASSERT_*, around
// anything that other ranks wait for).
class MpiTest : public ::testing::Test {
 protected:
  void TearDown() override {
    const int local_failure = HasFailure() ? 1 : 0;
    int any_failure = 0;
    MPI_Allreduce(&local_failure, &any_failure, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any_failure && !local_failure && world_rank() == 0)
      ADD_FAILURE() << "failed on another rank (its messages are on stderr)";
  }
};

}  // namespace splitpipe::testing
