//! The frozen vision encoder (SigLIP) and pixel-shuffle connector of Idefics3, on the GPU.
