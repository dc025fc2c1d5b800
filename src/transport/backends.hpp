// The factories the registry (registry.cpp) maps names to; one per backend file.
#pragma once
#include <memory>

#include "splitpipe/transports.hpp"

namespace splitpipe {

std::unique_ptr<Transport> make_mpi_transport(const ControlPlane& control, const TransportLinks& links);
std::unique_ptr<Transport> make_nccl_transport(const ControlPlane& control, const TransportLinks& links);

}  // namespace splitpipe
