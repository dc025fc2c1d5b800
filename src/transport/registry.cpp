// --transport names -> data-plane backends. A new backend is one file and one line here.
#include <functional>
#include <map>

#include "backends.hpp"
#include "splitpipe/error.hpp"

namespace splitpipe {
namespace {

using Factory = std::function<std::unique_ptr<Transport>(const ControlPlane&, const TransportLinks&)>;

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> backends{
      {"mpi", make_mpi_transport},
      {"nccl", make_nccl_transport},
  };
  return backends;
}

}  // namespace

std::vector<std::string> transport_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Transport> make_transport(const std::string& name, const ControlPlane& control,
                                          const TransportLinks& links) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : transport_names()) known += (known.empty() ? "" : ", ") + n;
    throw UsageError("--transport '" + name + "': unknown; choose one of " + known);
  }
  return it->second(control, links);
}

}  // namespace splitpipe
