// Package maintenance holds the services that keep the store in shape and
// that must run on one node of the cluster at a time: they run on the
// leader only (see cluster.Maintainer). Each is small and in its own file:
// a name, an interval and one round of work.
package maintenance
