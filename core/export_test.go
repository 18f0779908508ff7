package core

// PlantedBug reports whether this build has the simulation's planted bug.
const PlantedBug = plantedBug
