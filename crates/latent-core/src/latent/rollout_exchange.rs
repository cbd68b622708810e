//! Rollouts made in pieces and put back together: a flat f32 encoding (what data-parallel replicas
//! exchange through the collective, [`crate::train::Replica::all_gather`]) and the concatenation
//! of pieces rolled out separately, re-padded to the widest prompt and completion.
//!
//! The encoding is exact: ids, lengths, masks and the bytes of the texts are integers below 2²⁴,
//! and the f32 fields are copied. Thinking states are sent for mixed positions only.

use super::rollout::Rollouts;
use crate::infer::StopReason;
use crate::{CoreError, Result};

const STOPS: [StopReason; 4] = [
    StopReason::Eos,
    StopReason::StopString,
    StopReason::Budget,
    StopReason::Policy,
];

fn stop_code(stop: StopReason) -> f32 {
    STOPS.iter().position(|&s| s == stop).expect("listed") as f32
}

/// Reads the flat encoding in order.
struct Reader<'a> {
    data: &'a [f32],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[f32]> {
        let end = self.at + n;
        let slice = self.data.get(self.at..end).ok_or_else(|| {
            CoreError::Shape(format!(
                "encoded rollouts end at value {} of {}, {n} more were expected",
                self.data.len(),
                end
            ))
        })?;
        self.at = end;
        Ok(slice)
    }

    fn count(&mut self) -> Result<usize> {
        Ok(self.take(1)?[0] as usize)
    }

    fn ints<T>(&mut self, n: usize, f: impl Fn(f32) -> T) -> Result<Vec<T>> {
        Ok(self.take(n)?.iter().map(|&v| f(v)).collect())
    }
}

/// `src` with `left` copies of `fill` before it and `right` after, appended to `out`.
fn pad_row<T: Copy>(out: &mut Vec<T>, src: &[T], fill: T, left: usize, right: usize) {
    out.extend(std::iter::repeat_n(fill, left));
    out.extend_from_slice(src);
    out.extend(std::iter::repeat_n(fill, right));
}

impl Rollouts {
    /// The flat f32 encoding of these rollouts ([`Rollouts::from_f32`] reads it back).
    pub fn to_f32(&self) -> Vec<f32> {
        let (w, h) = (self.width(), self.hidden);
        let mut out = vec![
            self.rows as f32,
            self.prompt_width as f32,
            self.completion_width as f32,
            h as f32,
        ];
        out.extend(self.ids.iter().map(|&t| t as f32));
        out.extend(self.attention_mask.iter().map(|&m| f32::from(m)));
        out.extend(self.completion_mask.iter().map(|&m| f32::from(m)));
        out.extend(self.thinking_mask.iter().map(|&m| f32::from(u8::from(m))));
        out.extend_from_slice(&self.gate_mean);
        out.extend_from_slice(&self.hidden_ratio);
        for (i, _) in self.thinking_mask.iter().enumerate().filter(|(_, &m)| m) {
            out.extend_from_slice(&self.thinking_states[i * h..(i + 1) * h]);
        }
        debug_assert_eq!(self.ids.len(), self.rows * w);
        for r in 0..self.rows {
            out.push(self.completions[r].len() as f32);
            out.extend(self.completions[r].iter().map(|&t| t as f32));
            out.push(stop_code(self.stops[r]));
            let bytes = self.texts[r].as_bytes();
            out.push(bytes.len() as f32);
            out.extend(bytes.iter().map(|&b| f32::from(b)));
        }
        out
    }

    /// Rollouts from their flat encoding ([`Rollouts::to_f32`]); an error for a truncated or
    /// malformed one.
    pub fn from_f32(data: &[f32]) -> Result<Rollouts> {
        let mut r = Reader { data, at: 0 };
        let (rows, prompt_width, completion_width, hidden) =
            (r.count()?, r.count()?, r.count()?, r.count()?);
        let cells = rows * (prompt_width + completion_width);
        let mut out = Rollouts {
            rows,
            prompt_width,
            completion_width,
            hidden,
            ids: r.ints(cells, |v| v as u32)?,
            attention_mask: r.ints(cells, |v| v as u8)?,
            completion_mask: r.ints(cells, |v| v as u8)?,
            thinking_mask: r.ints(cells, |v| v != 0.0)?,
            gate_mean: r.take(cells)?.to_vec(),
            hidden_ratio: r.take(cells)?.to_vec(),
            thinking_states: vec![0.0; cells * hidden],
            ..Default::default()
        };
        for i in 0..cells {
            if out.thinking_mask[i] {
                let state = r.take(hidden)?;
                out.thinking_states[i * hidden..(i + 1) * hidden].copy_from_slice(state);
            }
        }
        for _ in 0..rows {
            let n = r.count()?;
            out.completions.push(r.ints(n, |v| v as u32)?);
            let code = r.count()?;
            out.stops.push(*STOPS.get(code).ok_or_else(|| {
                CoreError::Shape(format!("encoded rollouts: no stop reason {code}"))
            })?);
            let n = r.count()?;
            let bytes = r.ints(n, |v| v as u8)?;
            out.texts.push(String::from_utf8(bytes).map_err(|e| {
                CoreError::Shape(format!("encoded rollouts: a text is not UTF-8 ({e})"))
            })?);
        }
        if r.at != data.len() {
            return Err(CoreError::Shape(format!(
                "encoded rollouts: {} values left over after {rows} rows",
                data.len() - r.at
            )));
        }
        Ok(out)
    }

    /// The rows of `parts` one after another, prompts left-padded and completions right-padded
    /// (ids with `pad_token_id`, as [`super::rollout`] pads) to the widest of all parts. Parts
    /// without rows are skipped; every part with rows must have the same `hidden`.
    pub fn concat(parts: &[Rollouts], pad_token_id: u32) -> Result<Rollouts> {
        let parts: Vec<&Rollouts> = parts.iter().filter(|p| p.rows > 0).collect();
        let Some(first) = parts.first() else {
            return Ok(Rollouts::default());
        };
        let h = first.hidden;
        if let Some(p) = parts.iter().find(|p| p.hidden != h) {
            return Err(CoreError::Shape(format!(
                "rollouts of hidden size {} and {} cannot be joined",
                h, p.hidden
            )));
        }
        let prompt_width = parts.iter().map(|p| p.prompt_width).max().unwrap_or(0);
        let completion_width = parts.iter().map(|p| p.completion_width).max().unwrap_or(0);
        let width = prompt_width + completion_width;
        let rows: usize = parts.iter().map(|p| p.rows).sum();
        let mut out = Rollouts {
            rows,
            prompt_width,
            completion_width,
            hidden: h,
            thinking_states: Vec::with_capacity(rows * width * h),
            ..Default::default()
        };
        for p in parts {
            let (w, left) = (p.width(), prompt_width - p.prompt_width);
            let right = completion_width - p.completion_width;
            for r in 0..p.rows {
                let row = r * w..(r + 1) * w;
                pad_row(&mut out.ids, &p.ids[row.clone()], pad_token_id, left, right);
                pad_row(
                    &mut out.attention_mask,
                    &p.attention_mask[row.clone()],
                    0,
                    left,
                    right,
                );
                pad_row(
                    &mut out.completion_mask,
                    &p.completion_mask[row.clone()],
                    0,
                    left,
                    right,
                );
                pad_row(
                    &mut out.thinking_mask,
                    &p.thinking_mask[row.clone()],
                    false,
                    left,
                    right,
                );
                pad_row(
                    &mut out.gate_mean,
                    &p.gate_mean[row.clone()],
                    1.0,
                    left,
                    right,
                );
                pad_row(
                    &mut out.hidden_ratio,
                    &p.hidden_ratio[row.clone()],
                    0.0,
                    left,
                    right,
                );
                out.thinking_states
                    .extend(std::iter::repeat_n(0.0, left * h));
                out.thinking_states
                    .extend_from_slice(&p.thinking_states[row.start * h..row.end * h]);
                out.thinking_states
                    .extend(std::iter::repeat_n(0.0, right * h));
            }
            out.completions.extend(p.completions.iter().cloned());
            out.texts.extend(p.texts.iter().cloned());
            out.stops.extend_from_slice(&p.stops);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows of prompt width `pw` (the first prompt one shorter), completions of `lens`, the
    /// first completion's first position mixed.
    fn part(pw: usize, lens: [usize; 2], base: u32) -> Rollouts {
        let cw = lens[0].max(lens[1]);
        let (w, h) = (pw + cw, 2);
        let mut r = Rollouts {
            rows: 2,
            prompt_width: pw,
            completion_width: cw,
            hidden: h,
            thinking_states: vec![0.0; 2 * w * h],
            ..Default::default()
        };
        for (row, &len) in lens.iter().enumerate() {
            let prompt_len = pw - usize::from(row == 0);
            for j in 0..w {
                let in_prompt = j < pw && j >= pw - prompt_len;
                let in_completion = j >= pw && j - pw < len;
                let real = in_prompt || in_completion;
                r.ids.push(if real { base + j as u32 } else { 0 });
                r.attention_mask.push(u8::from(real));
                r.completion_mask.push(u8::from(in_completion));
                let mixed = row == 0 && j == pw && len > 1;
                r.thinking_mask.push(mixed);
                r.gate_mean.push(if mixed { 0.5 } else { 1.0 });
                r.hidden_ratio.push(if mixed { 0.25 } else { 0.0 });
                if mixed {
                    let at = (row * w + j) * h;
                    r.thinking_states[at..at + h].copy_from_slice(&[0.1, -7.5]);
                }
            }
            r.completions
                .push((0..len).map(|j| base + (pw + j) as u32).collect());
            r.texts.push(format!("row {row} of {base}: ×"));
            r.stops.push(if row == 0 {
                StopReason::Eos
            } else {
                StopReason::Budget
            });
        }
        r
    }

    #[test]
    fn the_flat_encoding_reads_back_exactly() {
        let r = part(3, [2, 4], 70_000);
        assert_eq!(Rollouts::from_f32(&r.to_f32()).unwrap(), r);
        let flat = r.to_f32();
        assert!(Rollouts::from_f32(&flat[..flat.len() - 1]).is_err());
    }

    #[test]
    fn concatenated_parts_equal_the_rows_selected_from_their_join() {
        let (a, b) = (part(3, [2, 4], 100), part(5, [3, 1], 200));
        let joined = Rollouts::concat(&[a.clone(), Rollouts::default(), b.clone()], 0).unwrap();
        assert_eq!(
            (joined.rows, joined.prompt_width, joined.completion_width),
            (4, 5, 4)
        );
        // Re-selecting each part's rows from the join gives the part back, re-padded to its own
        // widths exactly as it was made.
        assert_eq!(joined.select_rows(&[0, 1]), a);
        assert_eq!(joined.select_rows(&[2, 3]), b);
        // Padding added by the join looks like the rollout's own padding.
        let w = joined.width();
        assert_eq!(&joined.ids[..2], &[0, 0]);
        assert_eq!(joined.gate_mean[w - 1], 1.0);
        assert_eq!(joined.thinking_states.len(), 4 * w * 2);
    }
}
