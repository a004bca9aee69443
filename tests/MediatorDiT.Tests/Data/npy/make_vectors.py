#!/usr/bin/env python3
"""Writes this folder's .npy/.npz test vectors with NumPy itself (run: python3 make_vectors.py .).
The values are simple formulas that NpyVectorTests.cs recomputes."""
import sys

import numpy as np
from numpy.lib import format as npformat

folder = sys.argv[1] if len(sys.argv) > 1 else "."
images = (np.arange(2 * 3 * 4 * 3) * 7 % 256).astype(np.uint8).reshape(2, 3, 4, 3)
latents = (np.arange(6, dtype=np.float32) - 2.5) / 4
mu = np.array([0.1, -2.0, 1e300], dtype=np.float64)
labels = np.array([0, 7, -1, 2**40], dtype=np.int64)

np.savez(f"{folder}/savez.npz", images, latents=latents.reshape(2, 3), mu=mu, labels=labels)
np.savez_compressed(f"{folder}/savez_compressed.npz", images, latents=latents.reshape(2, 3))
for version in [(1, 0), (2, 0), (3, 0)]:
    with open(f"{folder}/latents_v{version[0]}.npy", "wb") as f:
        npformat.write_array(f, latents.reshape(3, 2), version=version)
np.save(f"{folder}/fortran.npy", np.asfortranarray(latents.reshape(2, 3)))
np.save(f"{folder}/bigendian.npy", latents.astype(">f4"))
np.save(f"{folder}/object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
np.save(f"{folder}/scalar.npy", np.float64(2.5))
np.save(f"{folder}/bool.npy", np.array([True, False, True]))
