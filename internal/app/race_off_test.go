//go:build !race

package app_test

// raceDetector tells whether the tests run under the race detector.
const raceDetector = false
