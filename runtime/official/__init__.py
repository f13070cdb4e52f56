"""The official ShotStream 1.3B model's parts, on the runtime's interfaces: its loader (`loader`: the DiT by the
checkpoint's names, memory estimates, the random-weights stand-in), the Wan2.1 VAE (`wan_vae`, through diffusers)
and the umT5-XXL text encoder (`umt5`, through transformers). Imported only when the official preset is asked for;
the tiny preset never loads them."""
