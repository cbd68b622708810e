//! SGDD: semantic-guided masked discrete diffusion for sentence reconstruction and paraphrase.
//!
//! **Status:** not implemented yet. It will hold the frozen BERT-family encoder, the bidirectional diffusion decoder, the masking schedule, MaskGIT decoding with classifier-free guidance and the BLEU/EM/F1 metrics.
//!
//! See `docs/architecture.md` for how this crate fits into the workspace.
#![forbid(unsafe_code)]
