// The page's script (issue 13).
