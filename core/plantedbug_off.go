//go:build !simbug

package core

// plantedBug switches on a deliberate bug for TestSimulationCatchesPlantedBug;
// see plantedbug_on.go. It is false in every normal build, so the check
// that consults it compiles away.
const plantedBug = false
