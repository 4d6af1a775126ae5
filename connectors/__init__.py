"""Channel senders behind one small protocol. They know no database and no flows."""
