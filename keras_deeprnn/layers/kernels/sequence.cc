// The two loops of keras_deeprnn/layers/_fused.py as CPU kernels.
//
// DeeprnnSequenceForward runs a recurrence over the projected inputs P
// (T, B, G) and DeeprnnSequenceBackward computes dP_t and the state
// gradients; the math of every kind is the one written in _fused.py (whose
// TensorFlow loops remain the reference and the fallback). Everything else,
// the hoisted input product and the weight gradients, stays in TensorFlow.
//
// Why a kernel: in TensorFlow's op-by-op loop a step costs a dozen or more
// small ops, each dispatched and each splitting its work over the threads.
// Here the batch rows are cut into one block per thread and every block
// runs all T steps on its own (rows never interact), so a step is one
// single-threaded product of the block by a weight matrix packed once per
// call (Packed) plus one pass over its gate arithmetic, with no
// synchronisation between steps.

#include <algorithm>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace {
struct Tanh;
struct Logistic;
}  // namespace

namespace Eigen {
namespace internal {
// Vectorisable, as Eigen's own tanh and logistic are.
template <>
struct functor_traits<::Tanh> {
  enum { Cost = functor_traits<scalar_tanh_op<float>>::Cost, PacketAccess = true };
};
template <>
struct functor_traits<::Logistic> {
  enum { Cost = functor_traits<scalar_logistic_op<float>>::Cost, PacketAccess = true };
};
}  // namespace internal
}  // namespace Eigen

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::OpInputList;
using tensorflow::OpOutputList;
using tensorflow::Status;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::errors::InvalidArgument;

using Arr = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
using AMap = Eigen::Map<Arr, 0, Stride>;
using CAMap = Eigen::Map<const Arr, 0, Stride>;

// `cols` columns, from column `col`, of `rows` rows of a row-major buffer
// whose rows are `width` floats apart.
inline AMap Cols(float* p, int rows, int width, int col, int cols) {
  return AMap(p + col, rows, cols, Stride(width));
}
inline CAMap Cols(const float* p, int rows, int width, int col, int cols) {
  return CAMap(p + col, rows, cols, Stride(width));
}

// tanh and the logistic function with one result whichever of Eigen's
// paths computes them. Eigen vectorises a row from its first aligned
// element and computes the elements before it (and the tail) one by one
// with other formulas, so where the peeling starts, which depends on the
// buffer's address, changed the last bit of results from call to call.
// Here the single element goes through the vector code too. (The build
// also turns off fused multiply-add contraction, for the same reason.)
template <typename EigenOp>
struct SameOnEveryPath {
  using Full = Eigen::internal::packet_traits<float>::type;
  float operator()(const float& x) const {
    return Eigen::internal::pfirst(EigenOp().packetOp(Eigen::internal::pset1<Full>(x)));
  }
  template <typename Packet>
  Packet packetOp(const Packet& x) const { return EigenOp().packetOp(x); }
};
struct Tanh : SameOnEveryPath<Eigen::internal::scalar_tanh_op<float>> {};
struct Logistic : SameOnEveryPath<Eigen::internal::scalar_logistic_op<float>> {};

// A weight matrix W (rows x cols, row-major) packed once for Eigen's
// block-panel kernel, then applied to many blocks of rows:
//     out (n x cols) += in (n x rows) W       (or, transposed,
//     out (n x rows) += in (n x cols) W^T).
// Eigen's own products repack the weight matrix on every call, which took
// a third of their time here (the recurrent matrix is the large operand).
// In Eigen's column-major terms out^T += A in^T with A = W^T (or W).
class Packed {
 public:
  Packed() = default;
  Packed(const float* w, int rows, int cols, bool transposed)
      : w_(w), rows_(rows), cols_(cols), transposed_(transposed) {
    m_ = transposed ? rows : cols;
    k_ = transposed ? cols : rows;
    data_.resize(size_t(m_) * k_);
    for (int k0 = 0; k0 < k_; k0 += kKc) {
      const int kc = std::min(kKc, k_ - k0);
      float* block = data_.data() + size_t(k0) * m_;
      if (transposed) {  // A = W: A(i, k) = w[i * cols + k]
        Pack<Eigen::RowMajor>(block, w, cols, k0, kc);
      } else {  // A = W^T: A(i, k) = w[k * cols + i]
        Pack<Eigen::ColMajor>(block, w, cols, k0, kc);
      }
    }
  }

  // out += in op(W); `in` has n rows `ldi` apart, `out` n rows `ldo` apart;
  // `scratch` holds at least ScratchSize(n) floats.
  void Apply(const float* in, int ldi, int n, float* out, int ldo, float* scratch) const {
    namespace ei = Eigen::internal;
    if (n == 1) {  // one row: Eigen's matrix-vector product reads W as it lies
      using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      using Row = Eigen::Map<Eigen::Matrix<float, 1, Eigen::Dynamic>>;
      using CRow = Eigen::Map<const Eigen::Matrix<float, 1, Eigen::Dynamic>>;
      const Eigen::Map<const Mat> w(w_, rows_, cols_);
      if (transposed_)
        Row(out, rows_).noalias() += CRow(in, cols_) * w.transpose();
      else
        Row(out, cols_).noalias() += CRow(in, rows_) * w;
      return;
    }
    using RhsMapper = ei::const_blas_data_mapper<float, Eigen::Index, Eigen::ColMajor>;
    using ResMapper = ei::blas_data_mapper<float, Eigen::Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
    ei::gemm_pack_rhs<float, Eigen::Index, RhsMapper, Traits::nr, Eigen::ColMajor> pack_rhs;
    ei::gebp_kernel<float, float, Eigen::Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
    const RhsMapper rhs(in, ldi);
    const ResMapper res(out, ldo);
    for (int k0 = 0; k0 < k_; k0 += kKc) {
      const int kc = std::min(kKc, k_ - k0);
      pack_rhs(scratch, rhs.getSubMapper(k0, 0), kc, n);
      gebp(res, data_.data() + size_t(k0) * m_, scratch, m_, kc, n, 1.0f);
    }
  }

  static size_t ScratchSize(int n) { return size_t(kKc) * (n + Traits::nr); }

 private:
  using Traits = Eigen::internal::gebp_traits<float, float>;
  static constexpr int kKc = 256;  // depth block: kc x n of `in` stays in L1

  template <int Order>
  void Pack(float* block, const float* w, int stride, int k0, int kc) {
    namespace ei = Eigen::internal;
    using Mapper = ei::const_blas_data_mapper<float, Eigen::Index, Order>;
    ei::gemm_pack_lhs<float, Eigen::Index, Mapper, Traits::mr, Traits::LhsProgress,
                      typename Traits::LhsPacket4Packing, Order>
        pack;
    pack(block, Mapper(w, stride).getSubMapper(0, k0), kc, m_);
  }

  const float* w_ = nullptr;
  int rows_ = 0, cols_ = 0;
  bool transposed_ = false;
  int m_ = 0, k_ = 0;
  std::vector<float, Eigen::aligned_allocator<float>> data_;
};

// What the attributes say about the recurrence.
struct Spec {
  std::string kind;       // rnn, gru, lstm, mut1, mut2, mut3
  std::string gates;      // lstm: the gate blocks present, in the order i f c o
  std::string peepholes;  // lstm: the gates with a peephole, in the order i f o
  bool cifg = false, input_activation = true, output_activation = true;
  bool fgr = false;       // lstm: the gates' recurrence, a third state
  float leak = 0.f;       // rnn
  bool zero_output = false;

  bool Lstm() const { return kind == "lstm"; }
  bool Mut() const { return kind.rfind("mut", 0) == 0; }
  // Width (in units) of the activations kept per step.
  int SavedWidth() const {
    if (Lstm()) return static_cast<int>(gates.size());
    if (kind == "gru") return 4;
    if (Mut()) return 3;
    return 1;
  }
  // The kinds whose dA_t differs from dP_t.
  bool SeparateDA() const { return kind == "gru" || Mut(); }
  // Widths, in units, of P (and dP), of R's columns (and dA), of state k.
  int InputWidth() const { return Lstm() ? static_cast<int>(gates.size()) : kind == "rnn" ? 1 : 3; }
  int RecurrentWidth() const {
    return Lstm() ? InputWidth() : kind == "gru" ? 3 : kind == "mut2" ? 2 : 1;
  }
  int States() const { return Lstm() ? (fgr ? 3 : 2) : 1; }
  int StateWidth(int k) const { return k == 2 ? 3 : 1; }
  int Block(char g) const { return static_cast<int>(gates.find(g)); }
  int Peep(char g) const { return static_cast<int>(peepholes.find(g)); }
};

Status ReadSpec(OpKernelConstruction* ctx, Spec* s) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("kind", &s->kind));
  TF_RETURN_IF_ERROR(ctx->GetAttr("gates", &s->gates));
  TF_RETURN_IF_ERROR(ctx->GetAttr("peepholes", &s->peepholes));
  TF_RETURN_IF_ERROR(ctx->GetAttr("cifg", &s->cifg));
  TF_RETURN_IF_ERROR(ctx->GetAttr("input_activation", &s->input_activation));
  TF_RETURN_IF_ERROR(ctx->GetAttr("output_activation", &s->output_activation));
  TF_RETURN_IF_ERROR(ctx->GetAttr("fgr", &s->fgr));
  TF_RETURN_IF_ERROR(ctx->GetAttr("leak", &s->leak));
  TF_RETURN_IF_ERROR(ctx->GetAttr("zero_output", &s->zero_output));
  static const char* kKinds[] = {"rnn", "gru", "lstm", "mut1", "mut2", "mut3"};
  if (std::find(std::begin(kKinds), std::end(kKinds), s->kind) == std::end(kKinds))
    return InvalidArgument("unknown recurrence kind '", s->kind, "'");
  return Status();
}

// The weights a step multiplies by, packed (see Packed): R, and the
// LSTM's W_g (fgr) or the MUT cells' W_hh and (MUT3) W_hz, for the forward
// (x W) or the backward (x W^T) loop; b_rec, the GRU's recurrent bias.
struct Weights {
  Packed R, w_g, w_hh, w_hz;
  const float* b_rec = nullptr;  // (Gr) or null
};

Weights ReadWeights(const Spec& s, const Tensor& R, const Tensor& b_rec,
                    const OpInputList& extra, bool transposed) {
  Weights w;
  auto pack = [&](const Tensor& t) {
    return Packed(t.flat<float>().data(), t.dim_size(0), t.dim_size(1), transposed);
  };
  w.R = pack(R);
  w.b_rec = b_rec.NumElements() ? b_rec.flat<float>().data() : nullptr;
  if (s.Mut()) {
    w.w_hh = pack(extra[extra.size() - 1]);
    if (s.kind == "mut3") w.w_hz = pack(extra[0]);
  }
  if (s.Lstm() && s.fgr) w.w_g = pack(extra[extra.size() - 1]);
  return w;
}

// Per-block scratch buffers.
struct Scratch {
  std::vector<float> a, z, t1, t2, t3;
  std::vector<float, Eigen::aligned_allocator<float>> pack;
  void Size(int n, int U, int G, int Gr) {
    pack.resize(Packed::ScratchSize(n));
    a.resize(size_t(n) * std::max(Gr, 1));
    z.resize(size_t(n) * std::max(G, 4 * U));
    t1.resize(size_t(n) * 3 * U);
    t2.resize(size_t(n) * 3 * U);
    t3.resize(size_t(n) * 3 * U);
  }
};

// ---- forward steps ---------------------------------------------------------
// p (n, G), a (n, Gr) the recurrent product with b_rec; prev/next the
// states (n, U_k) contiguous; act (n, saved width * U) the kept activations.
struct Forward {
  const Spec& s;
  const Weights& w;
  const std::vector<const float*>& peep;  // one (U) vector per peephole
  int n, U, G, Gr;

  void Step(const float* p, const float* a, const float* rmask,
            const std::vector<const float*>& prev, const std::vector<float*>& next,
            float* act, Scratch& sc) const {
    if (s.kind == "rnn") return Rnn(p, a, prev, next, act);
    if (s.kind == "gru") return Gru(p, a, prev, next, act);
    if (s.Lstm()) return Lstm(p, a, prev, next, act, sc);
    return Mut(p, a, rmask, prev, next, act, sc);
  }

  void Rnn(const float* p, const float* a, const std::vector<const float*>& prev,
           const std::vector<float*>& next, float* act) const {
    AMap sv = Cols(act, n, U, 0, U);
    sv = (Cols(p, n, G, 0, U) + Cols(a, n, Gr, 0, U)).unaryExpr(Tanh());
    AMap h = Cols(next[0], n, U, 0, U);
    if (s.leak != 0.f)
      h = s.leak * Cols(prev[0], n, U, 0, U) + (1.f - s.leak) * sv;
    else
      h = sv;
  }

  void Gru(const float* p, const float* a, const std::vector<const float*>& prev,
           const std::vector<float*>& next, float* act) const {
    const int W = 4 * U;
    AMap z = Cols(act, n, W, 0, U), r = Cols(act, n, W, U, U);
    AMap nn = Cols(act, n, W, 2 * U, U), ah = Cols(act, n, W, 3 * U, U);
    z = (Cols(p, n, G, 0, U) + Cols(a, n, Gr, 0, U)).unaryExpr(Logistic());
    r = (Cols(p, n, G, U, U) + Cols(a, n, Gr, U, U)).unaryExpr(Logistic());
    ah = Cols(a, n, Gr, 2 * U, U);
    nn = (Cols(p, n, G, 2 * U, U) + r * ah).unaryExpr(Tanh());
    Cols(next[0], n, U, 0, U) = z * Cols(prev[0], n, U, 0, U) + (1.f - z) * nn;
  }

  void Lstm(const float* p, const float* a, const std::vector<const float*>& prev,
            const std::vector<float*>& next, float* act, Scratch& sc) const {
    const int W = G;  // the saved activations have the gates' width
    AMap zz = Cols(sc.z.data(), n, G, 0, G);
    zz = Cols(p, n, G, 0, G) + Cols(a, n, Gr, 0, G);
    if (s.fgr) {  // z_{i,f,o} += g_{t-1} W_g
      Cols(sc.t1.data(), n, 3 * U, 0, 3 * U).setZero();
      w.w_g.Apply(prev[2], 3 * U, n, sc.t1.data(), 3 * U, sc.pack.data());
      const char* ifo = "ifo";
      for (int k = 0; k < 3; ++k)
        Cols(sc.z.data(), n, G, s.Block(ifo[k]) * U, U) += Cols(sc.t1.data(), n, 3 * U, k * U, U);
    }
    CAMap c_prev = Cols(prev[1], n, U, 0, U);
    auto z = [&](char g) { return Cols(sc.z.data(), n, G, s.Block(g) * U, U); };
    auto gate = [&](char g) { return Cols(act, n, W, s.Block(g) * U, U); };
    auto pv = [&](char g) {
      return Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>(peep[s.Peep(g)], U);
    };
    for (char g : std::string("if")) {
      if (s.Block(g) < 0) continue;
      if (s.Peep(g) >= 0)
        gate(g) = (z(g) + c_prev.rowwise() * pv(g)).unaryExpr(Logistic());
      else
        gate(g) = (z(g)).unaryExpr(Logistic());
    }
    if (s.input_activation)
      gate('c') = z('c').unaryExpr(Tanh());
    else
      gate('c') = z('c');
    AMap c = Cols(next[1], n, U, 0, U);
    const bool has_i = s.Block('i') >= 0, has_f = s.Block('f') >= 0;
    if (s.cifg)
      c = gate('i') * gate('c') + (1.f - gate('i')) * c_prev;
    else if (has_i && has_f)
      c = gate('i') * gate('c') + gate('f') * c_prev;
    else if (has_i)
      c = gate('i') * gate('c') + c_prev;
    else
      c = gate('c') + gate('f') * c_prev;
    AMap h = Cols(next[0], n, U, 0, U);
    if (s.output_activation)
      h = c.unaryExpr(Tanh());
    else
      h = c;
    if (s.Block('o') >= 0) {
      if (s.Peep('o') >= 0)
        gate('o') = (z('o') + c.rowwise() * pv('o')).unaryExpr(Logistic());
      else
        gate('o') = (z('o')).unaryExpr(Logistic());
      h *= gate('o');
    }
    if (s.fgr) {
      const char* ifo = "ifo";
      for (int k = 0; k < 3; ++k) Cols(next[2], n, 3 * U, k * U, U) = gate(ifo[k]);
    }
  }

  void Mut(const float* p, const float* a, const float* rmask,
           const std::vector<const float*>& prev, const std::vector<float*>& next,
           float* act, Scratch& sc) const {
    const int W = 3 * U;
    AMap z = Cols(act, n, W, 0, U), r = Cols(act, n, W, U, U), nn = Cols(act, n, W, 2 * U, U);
    CAMap h_prev = Cols(prev[0], n, U, 0, U);
    AMap h_rec = Cols(sc.t2.data(), n, U, 0, U);
    if (rmask)
      h_rec = h_prev * Cols(rmask, n, U, 0, U);
    else
      h_rec = h_prev;
    if (s.kind == "mut2") {
      z = (Cols(p, n, G, 0, U) + Cols(a, n, Gr, 0, U)).unaryExpr(Logistic());
      r = (Cols(p, n, G, U, U) + Cols(a, n, Gr, U, U)).unaryExpr(Logistic());
    } else {
      if (s.kind == "mut1") {
        z = (Cols(p, n, G, 0, U)).unaryExpr(Logistic());
      } else {  // mut3: z = s(x_z + tanh(h~) W_hz)
        Cols(sc.t3.data(), n, U, 0, U) = h_rec.unaryExpr(Tanh());
        Cols(sc.t1.data(), n, U, 0, U).setZero();
        w.w_hz.Apply(sc.t3.data(), U, n, sc.t1.data(), U, sc.pack.data());
        z = (Cols(p, n, G, 0, U) + Cols(sc.t1.data(), n, U, 0, U)).unaryExpr(Logistic());
      }
      r = (Cols(p, n, G, U, U) + Cols(a, n, Gr, 0, U)).unaryExpr(Logistic());
    }
    Cols(sc.t3.data(), n, U, 0, U) = r * h_rec;
    Cols(sc.t1.data(), n, U, 0, U).setZero();
    w.w_hh.Apply(sc.t3.data(), U, n, sc.t1.data(), U, sc.pack.data());
    nn = (Cols(sc.t1.data(), n, U, 0, U) + Cols(p, n, G, 2 * U, U)).unaryExpr(Tanh());
    Cols(next[0], n, U, 0, U) = nn * z + h_prev * (1.f - z);
  }
};

// ---- backward steps --------------------------------------------------------
// From the kept activations `act`, the previous states and d_new (the
// gradients of the step's new states, output gradient included): dp (n, G),
// da (n, Gr, only for the kinds where it differs) and d_prev (the previous
// states' gradients except the path through A_t).
struct Backward {
  const Spec& s;
  const Weights& w;
  const std::vector<const float*>& peep;
  int n, U, G, Gr;

  void Step(const float* act, const float* rmask, const std::vector<const float*>& prev,
            const std::vector<float*>& d_new, float* dp, float* da,
            const std::vector<float*>& d_prev, Scratch& sc) const {
    if (s.kind == "rnn") return Rnn(act, d_new, dp, d_prev);
    if (s.kind == "gru") return Gru(act, prev, d_new, dp, da, d_prev);
    if (s.Lstm()) return Lstm(act, prev, d_new, dp, d_prev, sc);
    return Mut(act, rmask, prev, d_new, dp, da, d_prev, sc);
  }

  void Rnn(const float* act, const std::vector<float*>& d_new, float* dp,
           const std::vector<float*>& d_prev) const {
    CAMap sv = Cols(act, n, U, 0, U);
    AMap dh = Cols(d_new[0], n, U, 0, U);
    const float keep = s.leak != 0.f ? 1.f - s.leak : 1.f;
    Cols(dp, n, G, 0, U) = keep * dh * (1.f - sv * sv);
    Cols(d_prev[0], n, U, 0, U) = s.leak * dh;
  }

  void Gru(const float* act, const std::vector<const float*>& prev,
           const std::vector<float*>& d_new, float* dp, float* da,
           const std::vector<float*>& d_prev) const {
    const int W = 4 * U;
    CAMap z = Cols(act, n, W, 0, U), r = Cols(act, n, W, U, U);
    CAMap nn = Cols(act, n, W, 2 * U, U), ah = Cols(act, n, W, 3 * U, U);
    AMap dh = Cols(d_new[0], n, U, 0, U);
    AMap dz = Cols(dp, n, G, 0, U), dr = Cols(dp, n, G, U, U), dn = Cols(dp, n, G, 2 * U, U);
    dz = dh * (Cols(prev[0], n, U, 0, U) - nn) * z * (1.f - z);
    dn = dh * (1.f - z) * (1.f - nn * nn);
    dr = dn * ah * r * (1.f - r);
    Cols(da, n, Gr, 0, 2 * U) = Cols(dp, n, G, 0, 2 * U);
    Cols(da, n, Gr, 2 * U, U) = dn * r;
    Cols(d_prev[0], n, U, 0, U) = dh * z;
  }

  void Lstm(const float* act, const std::vector<const float*>& prev,
            const std::vector<float*>& d_new, float* dp, const std::vector<float*>& d_prev,
            Scratch& sc) const {
    const int W = G;
    auto gate = [&](char g) { return Cols(act, n, W, s.Block(g) * U, U); };
    auto dz = [&](char g) { return Cols(dp, n, G, s.Block(g) * U, U); };
    auto pv = [&](char g) {
      return Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>(peep[s.Peep(g)], U);
    };
    const bool has_i = s.Block('i') >= 0, has_f = s.Block('f') >= 0;
    const bool has_o = s.Block('o') >= 0;
    CAMap c_prev = Cols(prev[1], n, U, 0, U);
    AMap dh = Cols(d_new[0], n, U, 0, U);
    // c_t, then the output activation of it, in scratch.
    AMap out = Cols(sc.z.data(), n, 4 * U, U, U);
    AMap dc = Cols(sc.z.data(), n, 4 * U, 2 * U, U);
    // i, f and g as arrays (the absent gates are constants).
    AMap i = Cols(sc.t1.data(), n, 3 * U, 0, U), f = Cols(sc.t1.data(), n, 3 * U, U, U);
    AMap gg = Cols(sc.t1.data(), n, 3 * U, 2 * U, U);
    if (has_i) i = gate('i'); else i.setConstant(1.f);
    if (s.cifg) f = 1.f - i; else if (has_f) f = gate('f'); else f.setConstant(1.f);
    gg = gate('c');
    // c lives in the first U columns of the (n, 4U) scratch z.
    AMap cc = Cols(sc.z.data(), n, 4 * U, 0, U);
    cc = i * gg + f * c_prev;
    if (s.output_activation) out = cc.unaryExpr(Tanh()); else out = cc;
    // dg: fgr's gradients of the emitted gates [i, f, o] (the third state).
    AMap d_out = Cols(sc.t2.data(), n, 3 * U, 0, U);
    if (has_o) {
      CAMap o = gate('o');
      if (s.fgr)
        dz('o') = (dh * out + Cols(d_new[2], n, 3 * U, 2 * U, U)) * o * (1.f - o);
      else
        dz('o') = dh * out * o * (1.f - o);
      d_out = dh * o;
    } else {
      d_out = dh;
    }
    if (s.output_activation)
      dc = Cols(d_new[1], n, U, 0, U) + d_out * (1.f - out * out);
    else
      dc = Cols(d_new[1], n, U, 0, U) + d_out;
    if (s.Peep('o') >= 0) dc += dz('o').rowwise() * pv('o');
    AMap di = Cols(sc.t2.data(), n, 3 * U, U, U), df = Cols(sc.t2.data(), n, 3 * U, 2 * U, U);
    di = dc * gg;
    df = dc * c_prev;
    if (s.fgr) {
      di += Cols(d_new[2], n, 3 * U, 0, U);
      df += Cols(d_new[2], n, 3 * U, U, U);
    }
    if (s.cifg) di -= df;  // f = 1 - i
    if (has_i) dz('i') = di * i * (1.f - i);
    if (has_f) dz('f') = df * f * (1.f - f);
    if (s.input_activation)
      dz('c') = dc * i * (1.f - gg * gg);
    else
      dz('c') = dc * i;
    AMap dc_prev = Cols(d_prev[1], n, U, 0, U);
    dc_prev = dc * f;
    for (char g : std::string("if"))
      if (s.Peep(g) >= 0) dc_prev += dz(g).rowwise() * pv(g);
    Cols(d_prev[0], n, U, 0, U).setZero();
    if (s.fgr) {  // d g_{t-1} = [dz_i, dz_f, dz_o] W_g^T
      const char* ifo = "ifo";
      for (int k = 0; k < 3; ++k) Cols(sc.t3.data(), n, 3 * U, k * U, U) = dz(ifo[k]);
      Cols(d_prev[2], n, 3 * U, 0, 3 * U).setZero();
      w.w_g.Apply(sc.t3.data(), 3 * U, n, d_prev[2], 3 * U, sc.pack.data());
    }
  }

  void Mut(const float* act, const float* rmask, const std::vector<const float*>& prev,
           const std::vector<float*>& d_new, float* dp, float* da,
           const std::vector<float*>& d_prev, Scratch& sc) const {
    const int W = 3 * U;
    CAMap z = Cols(act, n, W, 0, U), r = Cols(act, n, W, U, U), nn = Cols(act, n, W, 2 * U, U);
    CAMap h_prev = Cols(prev[0], n, U, 0, U);
    AMap dh = Cols(d_new[0], n, U, 0, U);
    AMap h_rec = Cols(sc.t2.data(), n, U, 0, U);
    if (rmask) h_rec = h_prev * Cols(rmask, n, U, 0, U); else h_rec = h_prev;
    AMap dz = Cols(dp, n, G, 0, U), dr = Cols(dp, n, G, U, U), dn = Cols(dp, n, G, 2 * U, U);
    dz = dh * (nn - h_prev) * z * (1.f - z);
    dn = dh * z * (1.f - nn * nn);
    // dq = dn W_hh^T
    Cols(sc.t3.data(), n, U, 0, U) = dn;
    Cols(sc.t1.data(), n, U, 0, U).setZero();
    w.w_hh.Apply(sc.t3.data(), U, n, sc.t1.data(), U, sc.pack.data());
    AMap dq = Cols(sc.t1.data(), n, U, 0, U);
    dr = dq * h_rec * r * (1.f - r);
    AMap dh_rec = Cols(sc.t3.data(), n, U, 0, U);
    dh_rec = dq * r;
    if (s.kind == "mut3") {
      AMap dzz = Cols(sc.t1.data(), n, U, 0, U);  // dq is no longer needed
      Cols(sc.z.data(), n, U, 0, U) = dz;
      Cols(sc.t1.data(), n, U, 0, U).setZero();
      w.w_hz.Apply(sc.z.data(), U, n, sc.t1.data(), U, sc.pack.data());
      dh_rec += dzz * (1.f - h_rec.unaryExpr(Tanh()).square());
    }
    AMap dh_prev = Cols(d_prev[0], n, U, 0, U);
    if (rmask)
      dh_prev = dh * (1.f - z) + dh_rec * Cols(rmask, n, U, 0, U);
    else
      dh_prev = dh * (1.f - z) + dh_rec;
    if (s.kind == "mut2")
      Cols(da, n, Gr, 0, 2 * U) = Cols(dp, n, G, 0, 2 * U);
    else
      Cols(da, n, Gr, 0, U) = dr;
  }
};

// ---- shared plumbing -------------------------------------------------------
// Runs fn(row_begin, row_end) over one block of batch rows per thread.
template <typename Fn>
void ForBlocks(OpKernelContext* ctx, int batch, Fn fn) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  const int blocks = std::max(1, std::min(batch, workers->NumThreads()));
  tensorflow::Shard(blocks, workers, blocks, /*cost_per_unit=*/1 << 30,
                    [&](int64_t first, int64_t last) {
                      for (int64_t k = first; k < last; ++k) {
                        const int r0 = batch * k / blocks, r1 = batch * (k + 1) / blocks;
                        if (r1 > r0) fn(r0, r1);
                      }
                    });
}

std::vector<const float*> Peepholes(const Spec& s, const OpInputList& extra) {
  std::vector<const float*> p;
  if (s.Lstm())
    for (size_t k = 0; k < s.peepholes.size(); ++k) p.push_back(extra[k].flat<float>().data());
  return p;
}

// What both ops check of their inputs: every shape follows from T, B, U
// and the kind; a mismatch is named instead of read out of bounds.
Status CheckShape(const char* name, const Tensor& t, std::vector<int64_t> want) {
  if (t.dims() == static_cast<int>(want.size())) {
    bool same = true;
    for (size_t d = 0; d < want.size(); ++d) same = same && t.dim_size(d) == want[d];
    if (same) return Status();
  }
  std::string w;
  for (int64_t v : want) w += (w.empty() ? "" : ", ") + std::to_string(v);
  return InvalidArgument(name, " must have shape (", w, "), got ", t.shape().DebugString());
}

Status CheckCommon(const Spec& s, int T, int B, int U, const OpInputList& states,
                   const Tensor& R, const OpInputList& extra, const Tensor& rmask,
                   const Tensor& mask) {
  if (states.size() != s.States())
    return InvalidArgument("kind '", s.kind, "' has ", s.States(), " states, got ",
                           states.size());
  for (int k = 0; k < states.size(); ++k)
    TF_RETURN_IF_ERROR(CheckShape("state", states[k], {B, int64_t(s.StateWidth(k)) * U}));
  TF_RETURN_IF_ERROR(CheckShape("R", R, {U, int64_t(s.RecurrentWidth()) * U}));
  std::vector<std::vector<int64_t>> want;
  if (s.Lstm()) {
    for (size_t k = 0; k < s.peepholes.size(); ++k) want.push_back({U});
    if (s.fgr) want.push_back({3 * U, 3 * U});
  } else if (s.Mut()) {
    want.assign(s.kind == "mut3" ? 2 : 1, {U, U});
  }
  if (static_cast<size_t>(extra.size()) != want.size())
    return InvalidArgument("kind '", s.kind, "' takes ", want.size(), " extra weights, got ",
                           extra.size());
  for (size_t k = 0; k < want.size(); ++k)
    TF_RETURN_IF_ERROR(CheckShape("extra weight", extra[k], want[k]));
  if (rmask.NumElements()) TF_RETURN_IF_ERROR(CheckShape("rmask", rmask, {B, U}));
  if (mask.NumElements()) TF_RETURN_IF_ERROR(CheckShape("mask", mask, {T, B}));
  return Status();
}

#define DEEPRNN_ATTRS                                                      \
  Attr("n_states: int >= 1")                                               \
      .Attr("n_extra: int >= 0")                                           \
      .Attr("kind: string")                                                \
      .Attr("gates: string = ''")                                          \
      .Attr("peepholes: string = ''")                                      \
      .Attr("cifg: bool = false")                                          \
      .Attr("input_activation: bool = true")                               \
      .Attr("output_activation: bool = true")                              \
      .Attr("fgr: bool = false")                                           \
      .Attr("leak: float = 0.0")                                           \
      .Attr("zero_output: bool = false")

class ForwardOp : public OpKernel {
 public:
  explicit ForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadSpec(ctx, &spec_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("keep", &keep_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& P = ctx->input(0);
    OpInputList states, extra;
    OP_REQUIRES_OK(ctx, ctx->input_list("states", &states));
    OP_REQUIRES_OK(ctx, ctx->input_list("extra", &extra));
    const Tensor& R = ctx->input(1 + states.size());
    const Tensor& b_rec = ctx->input(2 + states.size());
    const Tensor& rmask_t = ctx->input(3 + states.size() + extra.size());
    const Tensor& mask_t = ctx->input(4 + states.size() + extra.size());
    OP_REQUIRES(ctx, P.dims() == 3 && states.size() > 0 && states[0].dims() == 2,
                InvalidArgument("P must be (T, B, G) and the states (B, units)"));
    OP_REQUIRES_OK(ctx, CheckShape("P", P, {P.dim_size(0), states[0].dim_size(0),
                                            int64_t(spec_.InputWidth()) * states[0].dim_size(1)}));
    OP_REQUIRES_OK(ctx, CheckCommon(spec_, P.dim_size(0), P.dim_size(1), states[0].dim_size(1),
                                    states, R, extra, rmask_t, mask_t));
    if (b_rec.NumElements()) OP_REQUIRES_OK(ctx, CheckShape("b_rec", b_rec, {R.dim_size(1)}));
    const int T = P.dim_size(0), B = P.dim_size(1), G = P.dim_size(2);
    const int U = states[0].dim_size(1), Gr = R.dim_size(1);
    const int n_states = states.size();
    const bool masked = mask_t.NumElements() > 0;
    const Weights w = ReadWeights(spec_, R, b_rec, extra, /*transposed=*/false);
    const std::vector<const float*> peep = Peepholes(spec_, extra);
    const int S = spec_.SavedWidth() * U;

    Tensor* Y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, B, U}), &Y));
    Tensor* saved = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            1, keep_ ? TensorShape({T, B, S}) : TensorShape({0}), &saved));
    OpOutputList prev_seqs, finals;
    OP_REQUIRES_OK(ctx, ctx->output_list("prev", &prev_seqs));
    OP_REQUIRES_OK(ctx, ctx->output_list("final", &finals));
    std::vector<float*> prev_out(n_states, nullptr), final_out(n_states);
    for (int k = 0; k < n_states; ++k) {
      const int Uk = states[k].dim_size(1);
      // Without a mask h_{t-1} is the output one step back: not kept twice.
      const bool kept = keep_ && (k > 0 || masked);
      Tensor* t = nullptr;
      OP_REQUIRES_OK(ctx, prev_seqs.allocate(
                              k, kept ? TensorShape({T, B, Uk}) : TensorShape({0}), &t));
      if (kept) prev_out[k] = t->flat<float>().data();
      OP_REQUIRES_OK(ctx, finals.allocate(k, states[k].shape(), &t));
      final_out[k] = t->flat<float>().data();
    }
    const float* p_all = P.flat<float>().data();
    const float* rmask = rmask_t.NumElements() ? rmask_t.flat<float>().data() : nullptr;
    const bool* mask = masked ? mask_t.flat<bool>().data() : nullptr;
    float* y_all = Y->flat<float>().data();
    float* saved_all = keep_ ? saved->flat<float>().data() : nullptr;

    ForBlocks(ctx, B, [&](int r0, int r1) {
      const int n = r1 - r0;
      Forward step{spec_, w, peep, n, U, G, Gr};
      Scratch sc;
      sc.Size(n, U, G, Gr);
      std::vector<std::vector<float>> cur(n_states), nxt(n_states);
      std::vector<const float*> cur_p(n_states);
      std::vector<float*> nxt_p(n_states);
      for (int k = 0; k < n_states; ++k) {
        const int Uk = states[k].dim_size(1);
        const float* s0 = states[k].flat<float>().data() + size_t(r0) * Uk;
        cur[k].assign(s0, s0 + size_t(n) * Uk);
        nxt[k].resize(size_t(n) * Uk);
      }
      std::vector<float> act(keep_ ? 0 : size_t(n) * S);
      std::vector<float> y_prev(size_t(n) * U, 0.f);
      const float* rm = rmask ? rmask + size_t(r0) * U : nullptr;
      for (int t = 0; t < T; ++t) {
        for (int k = 0; k < n_states; ++k) {
          cur_p[k] = cur[k].data();
          nxt_p[k] = nxt[k].data();
          if (prev_out[k]) {
            const int Uk = states[k].dim_size(1);
            std::copy(cur[k].begin(), cur[k].end(), prev_out[k] + (size_t(t) * B + r0) * Uk);
          }
        }
        // A = (b_rec) + h~ R
        AMap a = Cols(sc.a.data(), n, Gr, 0, Gr);
        if (w.b_rec)
          a.rowwise() = Eigen::Map<const Eigen::Array<float, 1, Eigen::Dynamic>>(w.b_rec, Gr);
        else
          a.setZero();
        const float* h_rec = cur[0].data();
        if (rm) {
          Cols(sc.t2.data(), n, U, 0, U) = Cols(cur[0].data(), n, U, 0, U) * Cols(rm, n, U, 0, U);
          h_rec = sc.t2.data();
        }
        w.R.Apply(h_rec, U, n, sc.a.data(), Gr, sc.pack.data());
        float* act_t = keep_ ? saved_all + (size_t(t) * B + r0) * S : act.data();
        step.Step(p_all + (size_t(t) * B + r0) * G, sc.a.data(), rm, cur_p, nxt_p, act_t, sc);
        float* y = y_all + (size_t(t) * B + r0) * U;
        std::copy(nxt[0].begin(), nxt[0].end(), y);
        if (mask) {
          // A masked row keeps its states and repeats (or zeroes) its output.
          for (int i = 0; i < n; ++i) {
            if (mask[size_t(t) * B + r0 + i]) continue;
            for (int k = 0; k < n_states; ++k) {
              const int Uk = states[k].dim_size(1);
              std::copy_n(cur[k].data() + size_t(i) * Uk, Uk, nxt[k].data() + size_t(i) * Uk);
            }
            if (spec_.zero_output)
              std::fill_n(y + size_t(i) * U, U, 0.f);
            else
              std::copy_n(y_prev.data() + size_t(i) * U, U, y + size_t(i) * U);
          }
          std::copy(y, y + size_t(n) * U, y_prev.begin());
        }
        std::swap(cur, nxt);
      }
      for (int k = 0; k < n_states; ++k) {
        const int Uk = states[k].dim_size(1);
        std::copy(cur[k].begin(), cur[k].end(), final_out[k] + size_t(r0) * Uk);
      }
    });
  }

 private:
  Spec spec_;
  bool keep_ = false;
};

class BackwardOp : public OpKernel {
 public:
  explicit BackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadSpec(ctx, &spec_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dY = ctx->input(0);
    OpInputList d_final, prev_seqs, extra;
    OP_REQUIRES_OK(ctx, ctx->input_list("d_final", &d_final));
    OP_REQUIRES_OK(ctx, ctx->input_list("prev", &prev_seqs));
    OP_REQUIRES_OK(ctx, ctx->input_list("extra", &extra));
    const int n_states = d_final.size();
    int i = 1 + n_states;
    const Tensor& saved = ctx->input(i++);
    i += n_states;
    const Tensor& h0 = ctx->input(i++);
    const Tensor& R = ctx->input(i++);
    i += extra.size();
    const Tensor& rmask_t = ctx->input(i++);
    const Tensor& mask_t = ctx->input(i++);
    OP_REQUIRES(ctx, dY.dims() == 3, InvalidArgument("dY must be (T, B, units)"));
    const int T = dY.dim_size(0), B = dY.dim_size(1), U = dY.dim_size(2);
    OP_REQUIRES_OK(ctx, CheckCommon(spec_, T, B, U, d_final, R, extra, rmask_t, mask_t));
    OP_REQUIRES_OK(ctx, CheckShape("saved", saved, {T, B, int64_t(spec_.SavedWidth()) * U}));
    OP_REQUIRES_OK(ctx, CheckShape("h0", h0, {B, U}));
    for (int k = 0; k < n_states; ++k)
      OP_REQUIRES_OK(ctx, CheckShape("prev", prev_seqs[k], {T, B, d_final[k].dim_size(1)}));
    const int Gr = R.dim_size(1);
    const bool masked = mask_t.NumElements() > 0;
    const int S = spec_.SavedWidth() * U;
    const int G = spec_.InputWidth() * U;
    Tensor empty_bias(tensorflow::DT_FLOAT, TensorShape({0}));
    const Weights w = ReadWeights(spec_, R, empty_bias, extra, /*transposed=*/true);
    const std::vector<const float*> peep = Peepholes(spec_, extra);
    const bool separate = spec_.SeparateDA();

    Tensor *dP = nullptr, *dA = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, B, G}), &dP));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            1, separate ? TensorShape({T, B, Gr}) : TensorShape({0}), &dA));
    OpOutputList d_init;
    OP_REQUIRES_OK(ctx, ctx->output_list("d_initial", &d_init));
    std::vector<float*> d_init_out(n_states);
    std::vector<int> widths(n_states);
    for (int k = 0; k < n_states; ++k) {
      widths[k] = d_final[k].dim_size(1);
      Tensor* t = nullptr;
      OP_REQUIRES_OK(ctx, d_init.allocate(k, d_final[k].shape(), &t));
      d_init_out[k] = t->flat<float>().data();
    }
    const float* rmask = rmask_t.NumElements() ? rmask_t.flat<float>().data() : nullptr;
    const bool* mask = masked ? mask_t.flat<bool>().data() : nullptr;
    const float* dy_all = dY.flat<float>().data();
    const float* saved_all = saved.flat<float>().data();
    float* dp_all = dP->flat<float>().data();
    float* da_all = separate ? dA->flat<float>().data() : nullptr;

    ForBlocks(ctx, B, [&](int r0, int r1) {
      const int n = r1 - r0;
      Backward step{spec_, w, peep, n, U, G, Gr};
      Scratch sc;
      sc.Size(n, U, G, Gr);
      std::vector<std::vector<float>> d(n_states), d_new(n_states), d_prev(n_states), direct;
      std::vector<float*> d_new_p(n_states), d_prev_p(n_states);
      std::vector<const float*> prev_p(n_states);
      for (int k = 0; k < n_states; ++k) {
        const float* g = d_final[k].flat<float>().data() + size_t(r0) * widths[k];
        d[k].assign(g, g + size_t(n) * widths[k]);
        d_new[k].resize(d[k].size());
        d_prev[k].resize(d[k].size());
        d_new_p[k] = d_new[k].data();
        d_prev_p[k] = d_prev[k].data();
      }
      if (mask) direct = d;
      std::vector<float> dy_carry(size_t(n) * U, 0.f), gy(size_t(n) * U);
      const float* rm = rmask ? rmask + size_t(r0) * U : nullptr;
      for (int t = T - 1; t >= 0; --t) {
        const size_t row0 = size_t(t) * B + r0;
        std::copy_n(dy_all + row0 * U, size_t(n) * U, gy.begin());
        for (int k = 0; k < n_states; ++k) std::copy(d[k].begin(), d[k].end(), d_new[k].begin());
        if (mask) {
          for (size_t e = 0; e < gy.size(); ++e) gy[e] += dy_carry[e];
          for (int r = 0; r < n; ++r) {
            const bool m = mask[row0 + r];
            for (int k = 0; k < n_states; ++k) {
              float* dn = d_new[k].data() + size_t(r) * widths[k];
              float* dd = direct[k].data() + size_t(r) * widths[k];
              const float* ds = d[k].data() + size_t(r) * widths[k];
              if (m) {
                std::fill_n(dd, widths[k], 0.f);
              } else {  // the step passes its states' gradients on unchanged
                std::copy_n(ds, widths[k], dd);
                std::fill_n(dn, widths[k], 0.f);
              }
            }
            float* g = gy.data() + size_t(r) * U;
            float* carry = dy_carry.data() + size_t(r) * U;
            if (m) {
              std::fill_n(carry, U, 0.f);
            } else {
              if (spec_.zero_output) std::fill_n(carry, U, 0.f); else std::copy_n(g, U, carry);
              std::fill_n(g, U, 0.f);
            }
          }
        }
        Cols(d_new[0].data(), n, U, 0, U) += Cols(gy.data(), n, U, 0, U);
        // The previous states: h_{t-1} is the output one step back without a mask.
        for (int k = 0; k < n_states; ++k) {
          const float* seq = prev_seqs[k].flat<float>().data();
          if (k == 0 && !masked) {
            prev_p[0] = t > 0 ? seq + (size_t(t - 1) * B + r0) * U
                              : h0.flat<float>().data() + size_t(r0) * U;
          } else {
            prev_p[k] = prev_seqs[k].NumElements() ? seq + row0 * widths[k] : nullptr;
          }
        }
        float* dp = dp_all + row0 * G;
        float* da = separate ? da_all + row0 * Gr : dp;
        step.Step(saved_all + row0 * S, rm, prev_p, d_new_p, dp, da, d_prev_p, sc);
        // d h_{t-1} += (dA_t R^T) * rmask
        AMap dh_prev = Cols(d_prev[0].data(), n, U, 0, U);
        if (rm) {
          AMap rec = Cols(sc.t3.data(), n, U, 0, U);
          rec.setZero();
          w.R.Apply(da, separate ? Gr : G, n, sc.t3.data(), U, sc.pack.data());
          dh_prev += rec * Cols(rm, n, U, 0, U);
        } else {
          w.R.Apply(da, separate ? Gr : G, n, d_prev[0].data(), U, sc.pack.data());
        }
        for (int k = 0; k < n_states; ++k) {
          if (mask) Cols(d_prev[k].data(), n, widths[k], 0, widths[k]) +=
                        Cols(direct[k].data(), n, widths[k], 0, widths[k]);
          std::swap(d[k], d_prev[k]);
          d_prev_p[k] = d_prev[k].data();
        }
      }
      for (int k = 0; k < n_states; ++k)
        std::copy(d[k].begin(), d[k].end(), d_init_out[k] + size_t(r0) * widths[k]);
    });
  }

 private:
  Spec spec_;
};

}  // namespace

REGISTER_OP("DeeprnnSequenceForward")
    .Input("p: float")
    .Input("states: n_states * float")
    .Input("r: float")
    .Input("b_rec: float")
    .Input("extra: n_extra * float")
    .Input("rmask: float")
    .Input("mask: bool")
    .Output("y: float")
    .Output("saved: float")
    .Output("prev: n_states * float")
    .Output("final: n_states * float")
    .DEEPRNN_ATTRS
    .Attr("keep: bool = false")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      int n_states;
      TF_RETURN_IF_ERROR(c->GetAttr("n_states", &n_states));
      auto p = c->input(0);
      c->set_output(0, c->MakeShape({c->Dim(p, 0), c->Dim(p, 1), c->Dim(c->input(1), 1)}));
      c->set_output(1, c->UnknownShape());
      for (int k = 0; k < n_states; ++k) {
        c->set_output(2 + k, c->UnknownShape());
        c->set_output(2 + n_states + k, c->input(1 + k));
      }
      return Status();
    });

REGISTER_OP("DeeprnnSequenceBackward")
    .Input("dy: float")
    .Input("d_final: n_states * float")
    .Input("saved: float")
    .Input("prev: n_states * float")
    .Input("h0: float")
    .Input("r: float")
    .Input("extra: n_extra * float")
    .Input("rmask: float")
    .Input("mask: bool")
    .Output("dp: float")
    .Output("da: float")
    .Output("d_initial: n_states * float")
    .DEEPRNN_ATTRS
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      int n_states;
      TF_RETURN_IF_ERROR(c->GetAttr("n_states", &n_states));
      c->set_output(0, c->UnknownShape());
      c->set_output(1, c->UnknownShape());
      for (int k = 0; k < n_states; ++k) c->set_output(2 + k, c->input(1 + k));
      return Status();
    });

REGISTER_KERNEL_BUILDER(Name("DeeprnnSequenceForward").Device(tensorflow::DEVICE_CPU),
                        ForwardOp);
REGISTER_KERNEL_BUILDER(Name("DeeprnnSequenceBackward").Device(tensorflow::DEVICE_CPU),
                        BackwardOp);
