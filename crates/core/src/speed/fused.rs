//! Elementwise updates run as one pass over memory on the CPU backend.
//!
//! Written with tensor ops, an update such as momentum SGD's
//!
//! ```text
//! d = g + wd·w,   v ← μ·v + d,   w ← w − η·v
//! ```
//!
//! makes one pass over memory per op and allocates a fresh tensor for every op whose operand is
//! shared (the velocity, kept as state, always is). On `flex` [`update_in_place`] hands the update
//! the tensors' f32 storage instead, so it runs as one loop that reads each input once and writes
//! each output once, in place. On any other backend (WGPU) it gives the tensors back and the caller
//! runs its tensor-op form.
//!
//! **Invariant:** a fused update performs, per element, the same f32 operations in the same order
//! as its tensor-op form (no fused multiply-add, scalars rounded to f32 as burn rounds them), so
//! the two agree bit for bit; each optimiser and prox that uses this module tests that on random
//! inputs. A kernel whose loops are bound by arithmetic rather than memory runs them inside
//! [`crate::wide::widest`] (the same bits, more lanes).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};

/// Whether `tensor` is an f32 tensor of the flex backend. Probes a second handle, because the
/// downcast consumes its tensor (a tensor of another backend must come back unchanged).
fn on_flex_f32<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor
        .clone()
        .try_into_primitive::<Flex>()
        .is_ok_and(|t| t.dtype() == DType::F32)
}

/// The flex tensor of `tensor` (checked by [`on_flex_f32`]), contiguous from its first element.
fn contiguous_flex<const D: usize>(tensor: Tensor<D>) -> Option<FlexTensor> {
    let t = tensor.try_into_primitive::<Flex>().ok()?;
    Some(if t.layout().contiguous_offsets().is_some() {
        t
    } else {
        t.to_contiguous()
    })
}

/// The elements of a contiguous f32 flex tensor (made so by `to_contiguous` or
/// `contiguous_flex`), in burn's memory order.
pub fn elements(t: &FlexTensor) -> &[f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("a contiguous flex tensor");
    &t.storage::<f32>()[start..end]
}

/// The elements of a contiguous f32 flex tensor, writable: in place when the tensor is their
/// only owner, else after one copy (copy-on-write).
fn elements_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("made contiguous by contiguous_flex");
    &mut t.storage_mut::<f32>()[start..end]
}

thread_local! {
    /// Whether fused forms are switched off on this thread ([`with_tensor_ops`]).
    static TENSOR_OPS_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every fused form switched off on this thread, so every update takes its
/// tensor-op form: the reference the fused forms are tested against (bit for bit), and the
/// baseline of their speed-up.
pub fn with_tensor_ops<T>(f: impl FnOnce() -> T) -> T {
    crate::wide::with_flag(&TENSOR_OPS_ONLY, f)
}

/// Runs `kernel` on the f32 elements of `outputs` (writable, updated in place) and `inputs`
/// (read only), all of one shape, when every tensor lives on flex: returns the updated outputs.
/// Otherwise (or inside [`with_tensor_ops`]) returns `Err(outputs)` unchanged, for the caller's
/// tensor-op form.
///
/// The kernel sees every tensor as a slice in burn's memory order, all of one length.
pub fn update_in_place<const D: usize, const M: usize, const R: usize>(
    outputs: [Tensor<D>; M],
    inputs: [&Tensor<D>; R],
    kernel: impl FnOnce(&mut [&mut [f32]; M], &[&[f32]; R]),
) -> Result<[Tensor<D>; M], [Tensor<D>; M]> {
    if TENSOR_OPS_ONLY.with(std::cell::Cell::get) {
        return Err(outputs);
    }
    let shape = outputs[0].shape();
    let fits = |t: &Tensor<D>| t.shape() == shape && on_flex_f32(t);
    if !(outputs.iter().all(fits) && inputs.iter().all(|t| fits(t))) {
        return Err(outputs);
    }
    // Every tensor was checked to be an f32 flex tensor, so the downcasts below succeed.
    let read: Vec<FlexTensor> = inputs
        .iter()
        .filter_map(|t| contiguous_flex((*t).clone()))
        .collect();
    let mut written: Vec<FlexTensor> = outputs.into_iter().filter_map(contiguous_flex).collect();
    assert!(
        written.len() == M && read.len() == R,
        "checked f32 flex tensors downcast to flex"
    );
    {
        let read_slices: [&[f32]; R] = {
            let mut it = read.iter().map(elements);
            std::array::from_fn(|_| it.next().expect("R inputs"))
        };
        let mut slices: [&mut [f32]; M] = {
            let mut it = written.iter_mut().map(elements_mut);
            std::array::from_fn(|_| it.next().expect("M outputs"))
        };
        kernel(&mut slices, &read_slices);
    }
    drop(read);
    let mut it = written.into_iter().map(Tensor::<D>::from_primitive::<Flex>);
    Ok(std::array::from_fn(|_| it.next().expect("M outputs")))
}

/// [`update_in_place`] with a per-element kernel: `f(outputs, inputs)` maps the M output values
/// and R input values of one element to its M new output values (an update written once
/// against [`crate::Lane`] and called with `f32`). The loop runs inside [`crate::wide::widest`],
/// so it vectorises for the CPU's widest unit, the same bits at every width.
pub fn map_in_place<const D: usize, const M: usize, const R: usize>(
    outputs: [Tensor<D>; M],
    inputs: [&Tensor<D>; R],
    f: impl Fn([f32; M], [f32; R]) -> [f32; M],
) -> Result<[Tensor<D>; M], [Tensor<D>; M]> {
    update_in_place(outputs, inputs, |outs, ins| {
        let n = outs[0].len();
        assert!(outs.iter().all(|o| o.len() == n) && ins.iter().all(|i| i.len() == n));
        // The slices move into the kernel by value, cut to `n`: held behind the caller's arrays
        // they were reloaded for every element and the loop stayed scalar inside `widest`;
        // moved in, it runs at the full vector width.
        let mut outs: [&mut [f32]; M] = outs.each_mut().map(|o| &mut o[..n]);
        let ins: [&[f32]; R] = ins.map(|i| &i[..n]);
        crate::wide::widest(
            #[inline(always)]
            move || {
                for i in 0..n {
                    let new = f(
                        std::array::from_fn(|k| outs[k][i]),
                        std::array::from_fn(|k| ins[k][i]),
                    );
                    for (out, value) in outs.iter_mut().zip(new) {
                        out[i] = value;
                    }
                }
            },
        )
    })
}

/// The sum of every run of `run` consecutive elements of `tensor` (burn's memory order) when it
/// lives on flex, each summed in order from 0.0: `((0 + x₀) + x₁) + …`. That is the order flex's
/// `sum_dim` adds the elements of a contiguous axis whose later axes have size 1 (one output per
/// row, rows added one after another), so the sums equal `sum_dim`'s bit for bit there
/// ([`crate::units::sum_runs`]).
pub fn run_sums<const D: usize>(tensor: &Tensor<D>, run: usize) -> Option<Vec<f32>> {
    if TENSOR_OPS_ONLY.with(std::cell::Cell::get) || !on_flex_f32(tensor) || run == 0 {
        return None;
    }
    let t = contiguous_flex(tensor.clone())?;
    let x = elements(&t);
    if !x.len().is_multiple_of(run) {
        return None;
    }
    let mut sums = vec![0.0f32; x.len() / run];
    crate::units::sum_runs(x, run, &mut sums);
    Some(sums)
}

/// The f32 values of `tensor` in burn's memory order when it lives on flex, else `None`: the
/// small operands of a fused update (one value per group, a reduction's result), read without
/// a device round trip.
pub fn flex_values<const D: usize>(tensor: &Tensor<D>) -> Option<Vec<f32>> {
    if TENSOR_OPS_ONLY.with(std::cell::Cell::get) || !on_flex_f32(tensor) {
        return None;
    }
    tensor.clone().into_data().try_into_vec::<f32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn matrix(values: &[f32], shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().expect("f32")
    }

    /// `elementwise!` runs an update in place on flex and as tensor ops elsewhere (an autodiff
    /// tensor, or inside `with_tensor_ops`), with the same bits.
    #[test]
    fn elementwise_takes_either_form_with_the_same_bits() {
        fn update<L: crate::Lane>(a: L, b: L) -> [L; 1] {
            [a * b.clone() + b.mul_scalar(0.3)]
        }
        let a = matrix(&[1.0, -2.0, 3.5, 1e-3], [2, 2]);
        let b = matrix(&[0.1, 0.7, -4.0, 9.0], [2, 2]);
        let bits = |t: Tensor<2>| host(t).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let [fused] = crate::elementwise!([a.clone()], [&b], |[a], [b]| update(a, b));
        let [ops] =
            with_tensor_ops(|| crate::elementwise!([a.clone()], [&b], |[a], [b]| update(a, b)));
        let b_autodiff = b.clone().autodiff();
        let [autodiff] =
            crate::elementwise!([a.clone().autodiff()], [&b_autodiff], |[a], [b]| update(
                a, b
            ));
        assert!(autodiff.is_autodiff());
        assert_eq!(bits(fused.clone()), bits(ops));
        assert_eq!(bits(fused), bits(autodiff.inner()));
    }

    /// An output that another handle still shares is copied, never written under that handle.
    #[test]
    fn a_shared_output_is_copied_not_mutated() {
        let w = matrix(&[1.0, 2.0], [1, 2]);
        let kept = w.clone();
        let Ok([w]) = update_in_place([w], [], |[w], []| w.iter_mut().for_each(|x| *x += 1.0))
        else {
            panic!("flex tensors take the fused form");
        };
        assert_eq!(host(w), vec![2.0, 3.0]);
        assert_eq!(host(kept), vec![1.0, 2.0]);
    }

    /// Tensors of different shapes are not zipped: the outputs come back unchanged.
    #[test]
    fn mismatched_shapes_fall_back() {
        let a = matrix(&[1.0, 2.0], [1, 2]);
        let b = matrix(&[1.0, 2.0], [2, 1]);
        let Err([a]) = update_in_place([a], [&b], |_, _| panic!("not run")) else {
            panic!("shapes differ");
        };
        assert_eq!(host(a), vec![1.0, 2.0]);
    }

    /// A strided input (a transposed view) is read in logical order, like tensor ops read it.
    #[test]
    fn strided_inputs_line_up_with_the_outputs() {
        let a = matrix(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
        let b = matrix(&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0], [3, 2]).transpose();
        let expected = host(a.clone() + b.clone());
        let Ok([sum]) = update_in_place([a], [&b], |[a], [b]| {
            a.iter_mut().zip(b.iter()).for_each(|(a, b)| *a += b);
        }) else {
            panic!("flex tensors take the fused form");
        };
        assert_eq!(host(sum), expected);
    }
}
