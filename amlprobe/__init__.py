"""amlprobe's composition root: the command line that puts the engine, the Azure ML knowledge and the lab together.

The layers, lowest first, each importing only from those below it (tests/test_layers.py checks it):
``probe`` (the generic engine), ``checks`` (Azure ML knowledge), ``lab`` (the simulated VNet), and this
package, the only one that knows all three.
"""
