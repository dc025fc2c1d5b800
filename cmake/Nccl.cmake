# NCCL and the CUDA runtime for the nccl data plane (src/transport/nccl_transport.cpp). NCCL comes
# from the nvidia-nccl wheel that the torch wheel depends on (tools/setup installs both into
# .venv/), so splitpipe and LibTorch load one libnccl.so.2. The wheel ships only the versioned
# library (no libnccl.so for find_library or -lnccl), hence an imported target named by path.
# Include after cmake/LibTorch.cmake, which sets torch_prefix (.../site-packages/torch) and
# finds the CUDA toolkit (CUDA::cudart). -DNCCL_ROOT=<dir with include/nccl.h and
# lib/libnccl.so.2> names another NCCL.
if(NOT torch_prefix)
  message(FATAL_ERROR "cmake/Nccl.cmake needs torch_prefix: include(cmake/LibTorch.cmake) before it")
endif()
get_filename_component(nccl_wheel "${torch_prefix}/../nvidia/nccl" ABSOLUTE)
set(NCCL_ROOT "${nccl_wheel}" CACHE PATH "NCCL: a directory with include/nccl.h and lib/libnccl.so.2")

set(nccl_header "${NCCL_ROOT}/include/nccl.h")
set(nccl_library "${NCCL_ROOT}/lib/libnccl.so.2")
foreach(nccl_file IN ITEMS "${nccl_header}" "${nccl_library}")
  if(NOT EXISTS "${nccl_file}")
    message(FATAL_ERROR "NCCL not found: ${nccl_file} does not exist. Run tools/setup (it installs the torch "
                        "wheel and the nvidia-nccl wheel beside it into .venv/), or pass -DNCCL_ROOT=<dir with "
                        "include/nccl.h and lib/libnccl.so.2>.")
  endif()
endforeach()

# ncclCommGetAsyncError, ncclCommAbort and ncclGetLastError as used here need NCCL 2.13 or newer.
file(STRINGS "${nccl_header}" nccl_version_lines REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) +[0-9]+")
foreach(part IN ITEMS MAJOR MINOR PATCH)
  string(REGEX REPLACE ".*#define NCCL_${part} +([0-9]+).*" "\\1" nccl_${part} "${nccl_version_lines}")
endforeach()
set(NCCL_VERSION "${nccl_MAJOR}.${nccl_MINOR}.${nccl_PATCH}")
if(NCCL_VERSION VERSION_LESS 2.13)
  message(FATAL_ERROR "NCCL ${NCCL_VERSION} at ${NCCL_ROOT} is too old: the nccl transport needs 2.13 or newer")
endif()

if(NOT TARGET splitpipe::nccl)
  add_library(splitpipe::nccl SHARED IMPORTED)
  set_target_properties(splitpipe::nccl PROPERTIES
    IMPORTED_LOCATION "${nccl_library}"
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_ROOT}/include")
endif()

# LibTorch's CMake config ran find_package(CUDAToolkit): CUDA::cudart is the toolkit's runtime
# (headers and link-time library); at run time the RUNPATH set in cmake/LibTorch.cmake loads the
# wheel's libcudart.so.13, the one LibTorch uses.
if(NOT TARGET CUDA::cudart)
  message(FATAL_ERROR "CUDA::cudart is not defined: include cmake/Nccl.cmake after cmake/LibTorch.cmake "
                      "(LibTorch's CMake config finds the CUDA toolkit)")
endif()
message(STATUS "NCCL ${NCCL_VERSION} from ${NCCL_ROOT}")

set(SPLITPIPE_NCCL_LIBRARIES splitpipe::nccl CUDA::cudart)
