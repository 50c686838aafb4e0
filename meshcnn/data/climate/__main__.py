"""``python -m meshcnn.data.climate {synth,verify,check,to-ugscnn}``: the climate data tools (:mod:`.cli`)."""

from .cli import main

main()
