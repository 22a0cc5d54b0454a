"""What is pluggable: the registry idiom, layer families, backbones, data sets, whole models, and the registries'
torch-free metadata catalog."""
