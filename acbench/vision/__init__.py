"""Vision models and CIFAR-10 tensors for knowledge distillation (CNN teacher; ViT, Mixer, ResNet students)."""
