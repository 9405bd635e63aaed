"""TFLite's int8 reference kernels in numpy, one operator a module (as TFLM's reference kernels and CMSIS-NN lay
them out): each has `prepare(graph, op)`, what TFLite's Prepare computes once (multipliers, shifts, offsets,
activation bounds, padding), and `evaluate(params, x)`, its Eval on one int8 input. They are the bit-exact
specification of firmware/src/tflite_<op>.c."""
