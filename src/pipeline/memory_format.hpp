// --memory-format: stages with convolutions may keep their images and conv weights
// channels-last (NHWC), which oneDNN's CPU convolutions run faster (MobileNetV2 1.3x here).
//
// A pipeline must still train exactly like the same blocks in one process, and convolutions
// pick their kernels, and so their rounding, by the strides of what they get. Those strides
// differ at a stage boundary (a received tensor arrives contiguous; a [N, C, 1, 1] tensor
// counts as both layouts, so contiguous(format) would leave it as it is). So every block of a
// channels-last stage gets its 4-D input, and hands back its input's gradient, with exactly the
// strides of a fresh channels-last tensor, in one process and in a pipeline alike.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace splitpipe {

// Whether a stage on `device` holding these parameters runs channels-last under `format`
// (contiguous | channels-last | auto: channels-last on CPU); only stages with 4-D weights do.
bool wants_channels_last(const std::string& format, bool on_cpu, const std::vector<at::Tensor>& parameters);

// Stores the 4-D parameters channels-last (in place: optimizers keep their references).
void store_channels_last(const std::vector<at::Tensor>& parameters);

// The block boundary of a channels-last stage: x (4-D) with canonical channels-last strides,
// and in backward the gradient with them too. A copy only where the strides differ.
at::Tensor channels_last_boundary(const at::Tensor& x);

// A received output gradient (4-D) with the strides the boundary's backward gives it.
at::Tensor canonical_channels_last(const at::Tensor& x);

}  // namespace splitpipe
