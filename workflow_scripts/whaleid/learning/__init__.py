"""What the models learn with (TensorFlow and Keras, imported by the modules that need them).

- `pretrained`: the ImageNet weights files of the backbones, staged without TensorFlow.
- `backbones`: the classifier's and the embedding's networks over codes or squares.
- `augmentation`: the one augmentation every model trains with.
- `training`: the skeleton every model trains with: photos and labels, resume after a kill,
  the best epoch by validation MAP@5.
- `autoencoder`: the published convolutional autoencoder and its codes.
- `gpus`: which GPUs a job leases (standard library only: before TensorFlow is imported).
- `tensorflow_runtime`: how a job then runs TensorFlow on its threads and devices.

Nothing is imported here: `pretrained` loads without TensorFlow, for the Snakefile.
"""
