// librrc_shim.so — written next.
