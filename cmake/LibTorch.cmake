# Finds LibTorch from the pinned PyPI `torch` wheel that tools/setup installs into .venv/
# (headers, libraries and CMake config ship inside the wheel; the CUDA runtime and NCCL come
# as nvidia-* wheels beside it). -DTorch_DIR=... still points at any other LibTorch 2.x.
set(SPLITPIPE_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python whose torch package provides LibTorch (tools/setup makes .venv/)")

if(NOT Torch_DIR)
  if(NOT EXISTS "${SPLITPIPE_PYTHON}")
    message(FATAL_ERROR "LibTorch not found: ${SPLITPIPE_PYTHON} does not exist. Run tools/setup "
                        "(it installs the pinned torch wheel into .venv/), or pass -DTorch_DIR=<libtorch>/share/cmake/Torch.")
  endif()
  execute_process(
    COMMAND "${SPLITPIPE_PYTHON}" -c "import torch, torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE torch_cmake_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_VARIABLE torch_python_error RESULT_VARIABLE torch_python_status)
  if(NOT torch_python_status EQUAL 0)
    message(FATAL_ERROR "LibTorch not found: '${SPLITPIPE_PYTHON} -c \"import torch\"' failed; run tools/setup.\n"
                        "${torch_python_error}")
  endif()
  set(Torch_DIR "${torch_cmake_prefix}/Torch" CACHE PATH "LibTorch's CMake config" FORCE)
endif()

# TorchConfig looks for libc10/libtorch with find_library, where a system LibTorch (Debian's
# libtorch-dev) would win over the wheel's: put the wheel's own prefix first.
get_filename_component(torch_prefix "${Torch_DIR}/../../.." ABSOLUTE)
list(PREPEND CMAKE_PREFIX_PATH "${torch_prefix}")

# A CUDA-enabled LibTorch's config enables CUDA and needs nvcc, though no source of ours is
# CUDA: use the machine's toolkit unless one is named.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  set(cuda_home "$ENV{CUDA_HOME}")
  if(NOT cuda_home)
    set(cuda_home /usr/local/cuda)
  endif()
  if(EXISTS "${cuda_home}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${cuda_home}/bin/nvcc")
    set(CUDA_TOOLKIT_ROOT_DIR "${cuda_home}" CACHE PATH "CUDA toolkit (nvcc) used by LibTorch's CMake config")
  else()
    message(FATAL_ERROR "This LibTorch is built with CUDA and its CMake config needs a CUDA toolkit (nvcc), "
                        "but ${cuda_home}/bin/nvcc does not exist. Install NVIDIA's CUDA toolkit (12.6 or newer; no GPU "
                        "is needed) and set CUDA_HOME to it, or pass -DCMAKE_CUDA_COMPILER=<path to nvcc>.")
  endif()
endif()
# Only LibTorch's own CUDA code would use these; we compile no CUDA, so say nothing about it.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()

find_package(Torch 2 REQUIRED)
if(NOT TARGET torch_cuda)
  message(FATAL_ERROR "LibTorch at ${torch_prefix} has no CUDA backend; splitpipe builds against the CUDA-enabled wheel.")
endif()
message(STATUS "LibTorch ${Torch_VERSION} from ${torch_prefix} (CUDA backend built in)")

# The wheel's libraries find the CUDA runtime, cuDNN and NCCL wheels through their own RUNPATH;
# ours must load the same libcudart.so.13 (not /usr/local/cuda's, which can be older), so the
# wheel's directory comes first in every binary's RUNPATH.
get_filename_component(nvidia_wheels "${torch_prefix}/../nvidia" ABSOLUTE)
file(GLOB nvidia_lib_dirs LIST_DIRECTORIES true "${nvidia_wheels}/*/lib")
set(CMAKE_BUILD_RPATH ${nvidia_lib_dirs} "${torch_prefix}/lib")
# An installed binary (cmake --install) keeps finding the same libraries.
set(CMAKE_INSTALL_RPATH ${CMAKE_BUILD_RPATH})
