// Internal: the bucket of a value among sorted boundaries, the one search that `sortquant`
// (quantile buckets) and `kmeans` (nearest-centroid cells) share.
//
// starts[0] belongs to bucket 0 and is never compared; starts[j], j > 0, is the ascending
// boundary that bucket j begins above. The bucket of v is the largest j with v > starts[j]
// (0 if none): the number of boundaries below v, as at::bucketize(right=false) counts them.
// A NaN compares false everywhere and lands in bucket 0.
#pragma once
#include <cstdint>

namespace splitpipe {

// Branchless binary search over `buckets` starts (a power of two): log2(buckets) dependent
// loads, for tables too large for a vectorized scan of every start per value.
inline int64_t searched_bucket(float v, const float* starts, int64_t buckets) {
  int64_t bucket = 0;
  for (int64_t half = buckets / 2; half > 0; half /= 2) bucket += v > starts[bucket + half] ? half : 0;
  return bucket;
}

}  // namespace splitpipe
