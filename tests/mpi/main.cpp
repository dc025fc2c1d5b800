// gtest main for the MPI tests: MPI is initialised around the whole run, rank 0 prints the
// usual report, the other ranks print only their failed assertions (prefixed with the rank),
// and every rank exits non-zero if any rank saw a failure.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <iostream>

#include "mpi_test.hpp"
#include "splitpipe/mpi_world.hpp"

namespace {

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << "[rank " << rank_ << "] " << (result.file_name() ? result.file_name() : "?") << ":"
              << result.line_number() << ": " << result.message() << std::endl;
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  splitpipe::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Ranks share the machine's cores (often more ranks than cores under ctest).
  at::set_num_threads(1);

  const int rank = splitpipe::testing::world_rank();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  const int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any_failed;
}
