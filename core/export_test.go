package core

import "time"

// PlantedBug reports whether this build has the simulation's planted bug.
const PlantedBug = plantedBug

// FreshNextDeadline is NextDeadline computed without its cache.
func (c *Conn) FreshNextDeadline() time.Time { return c.computeNextDeadline() }
