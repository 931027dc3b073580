//! Image files to pixel values and image-token prompts, as transformers' Idefics3 processor.
