package remediation

// crashAt is called after each durable step of an action: a journal record
// of a kind written (claimed, started, …) and an audit step recorded (fence,
// activate, confirm, post_promotion). It does nothing; the crash test's
// build (tag crashtest) makes it kill the process at a named step.
var crashAt = func(step string) {}
