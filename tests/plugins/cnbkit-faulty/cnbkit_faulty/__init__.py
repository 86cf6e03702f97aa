"""cnbkit-faulty: plugins with bugs, for the tests of cnbkit's plugin host."""
