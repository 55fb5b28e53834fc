"""Shared experiments on CIFAR: the CNN teacher (``cifar.teacher``) and distilled students (``cifar.kd``)."""
