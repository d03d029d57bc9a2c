"""Operations: metrics, structured logging."""
