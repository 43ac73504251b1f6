// Step-time model (see step_model.h).
#include "sim/step_model.h"

#include <algorithm>

namespace zumik::sim {

StepModel::StepModel(const Profile& p)
    : t0_(p.t0), t_w_(p.t_w), c_lin_(p.c_lin), c_kv_(p.c_kv), c_att_(p.c_att), c_load_(p.c_load) {}

double StepModel::StepSeconds(const StepWork& w) const {
  if (w.empty()) return 0;
  const double tokens = static_cast<double>(w.prefill_tokens + w.decode_seqs);
  return t0_ + std::max(t_w_, c_lin_ * tokens) + c_kv_ * static_cast<double>(w.decode_context) +
         c_att_ * w.attention_pairs + c_load_ * static_cast<double>(w.loaded_tokens);
}

Duration StepModel::StepTime(const StepWork& w) const { return FromSeconds(StepSeconds(w)); }

}  // namespace zumik::sim
