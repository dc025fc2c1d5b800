// Data-plane backends by name (--transport): "mpi" (host memory, any machine) and "nccl"
// (GPUs; device memory sent directly, host memory staged). Adding one is one file in
// src/transport/ and one line in its registry (src/transport/registry.cpp).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "splitpipe/control_plane.hpp"
#include "splitpipe/transport.hpp"

namespace splitpipe {

// Every ordered pair (from, to) of ranks that will send messages, the same list on every rank.
using TransportLinks = std::vector<std::pair<int, int>>;

std::vector<std::string> transport_names();

// Collective over `control` (every rank calls it with the same name and links). The transport
// times out like `control`. Throws CollectiveError, on every rank, when the backend cannot run
// here (e.g. nccl where a rank sees no GPU), and UsageError for an unknown name.
std::unique_ptr<Transport> make_transport(const std::string& name, const ControlPlane& control,
                                          const TransportLinks& links);

}  // namespace splitpipe
