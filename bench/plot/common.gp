# Shared settings for the benchmark plots. Every script is called by bench/report.mjs as
#   gnuplot -e "plotdir=..; datadir=..; outdir=..; servers='volli ws'; labels='\"Volli Signal\" ..'" X.gp
set terminal pngcairo size 900,560 enhanced font 'DejaVu Sans,11'
set grid lc rgb '#dddddd'
set key top left box opaque
set border lc rgb '#555555'
# One colour per server, the same in every plot.
colour(s) = s eq 'volli' ? '#1f77b4' : s eq 'ws' ? '#2ca02c' : '#d62728'
label(i) = word(labels, i)
