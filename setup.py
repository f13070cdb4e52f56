"""ShotStream Runtime: live multi-shot cutscenes for games (causal video diffusion, dual KV cache, gRPC)."""
from setuptools import setup

# Exact pins: the versions this package is tested with. torch is pinned to its CPU build; a looser pin
# pulls a multi-GB CUDA build. GPU users install their own torch first.
CORE = [
    "torch==2.13.0",
    "numpy>=1.26",
    "onnx==1.23.2",
    "onnxruntime==1.31.1",
    "safetensors==0.8.0",
    "tqdm>=4.66",
    "pillow>=10",
    "imageio==2.38.1",
    "imageio-ffmpeg==0.8.1",
    "grpcio==1.85.1",
    "grpcio-tools==1.85.1",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
    "protobuf==7.36.2",
]

# The official preset's Wan2.1 VAE (diffusers) and umT5 text encoder (transformers, sentencepiece tokenizer);
# imported lazily by runtime/official/wan_vae.py and runtime/official/umt5.py only. `dev` pulls them so CI tests those modules.
OFFICIAL = ["diffusers>=0.35", "transformers>=4.51", "sentencepiece>=0.2", "tokenizers>=0.21"]

setup(
    name="shotstream-runtime",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.11",
    # Listed explicitly (tests/test_packaging.py checks that every package folder is here).
    packages=[
        "shotstream",
        "runtime",
        "runtime.backends",
        "runtime.official",
        "runtime.measure",
        "engine_bridge",
        "engine_bridge._gen",
        "engine_bridge.cluster",
        "engine_bridge.client",
        "demo_game",
        "storyworld",
        "storyworld.probe",
        "distill",
    ],
    package_data={
        "runtime": ["assets/tiny/*"],
        "engine_bridge": ["scripts/*.toml"],
        "demo_game": ["cutscenes.toml"],
        "storyworld": ["assets/*"],
    },
    include_package_data=True,
    install_requires=CORE,
    extras_require={
        "dev": ["pytest>=8", "hypothesis>=6.100", *OFFICIAL],
        "demo": ["pygame==2.6.1"],
        "official": OFFICIAL,
        "gpu": ["tensorrt>=10.0", "pycuda>=2024.1"],  # imported lazily by runtime/backends/trt_backend.py only
        "cluster": ["ray==2.60.0"],  # imported by engine_bridge/cluster/ only (serve and bench --cluster)
    },
    entry_points={"console_scripts": ["shotstream=shotstream.cli:main"]},
)
