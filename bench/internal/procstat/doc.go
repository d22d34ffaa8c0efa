// Package procstat reads what the harness needs to know about another
// process from Linux's /proc: CPU time consumed, resident memory and open
// file descriptors. It knows nothing about which program the process runs.
package procstat
