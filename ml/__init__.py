"""gradsheet's numerics: the 2-2-2 backprop engine, MNIST data, the CNN, training and prediction.

Nothing in this package imports xlwings: Excel talks to it through ``excel_addin``.
"""
