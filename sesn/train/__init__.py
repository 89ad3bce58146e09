"""Training and evaluation (torchvision-references style: ``get_args_parser`` + ``main``)."""
