"""``python -m meshcnn.data.climate {synth,verify,check,stats,to-ugscnn,...}``: the climate data tools."""
from .reader import main

main()
