"""Edits that produce tests/data/neurosim/instrumentation.patch from pristine NeuroSIM (run in NeuroSIM/)."""


def edit(fn, old, new, count=1):
    s = open(fn, newline="").read()
    if "\r\n" in s:
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    n = s.count(old)
    assert n == count, (fn, old[:70], n)
    open(fn, "w", newline="").write(s.replace(old, new))


edit(
    "Param.h",
    "class Param {\npublic:\n\tParam();\n",
    "class Param {\npublic:\n\tParam();\n"
    "\t// cim-dse instrumentation: per-term accumulators (J, counts), reset/printed by main.cpp per layer\n"
    "\tdouble nsx[32];\n",
)
edit(
    "Param.h",
    "class Param {",
    """// cim-dse instrumentation indices into Param::nsx
enum { NSX_ARRAY=0, NSX_ADC, NSX_ADC_CELL, NSX_ADC_COLUMN, NSX_ADC_ENCODER, NSX_WL, NSX_MUX, NSX_SHIFTADD, NSX_ADDER, NSX_DFF,
       NSX_NCONV, NSX_NSUBARRAY_READ, NSX_ADDERTREE_E, NSX_ADDERTREE_N, NSX_BUFFER_E, NSX_BUFFER_BITS, NSX_HTREE_E, NSX_HTREE_BITS,
       NSX_BUS_E, NSX_BUS_BITS, NSX_XYBUS_E, NSX_XYBUS_BITS, NSX_ADC_BIAS, NSX_N };
class Param {""",
)
edit(
    "Param.cpp",
    "Param::Param() {\n",
    """static double ns_env(const char *name, double def) {   // cim-dse: read a swept setting from the environment
	const char *v = getenv(name);
	return (v && *v) ? atof(v) : def;
}

Param::Param() {
	for (int i = 0; i < 32; i++) nsx[i] = 0;
""",
)
edit("Param.cpp", "\tmemcelltype = 1;", '\tmemcelltype = (int) ns_env("NS_MEMCELLTYPE", 1);')
edit("Param.cpp", "\taccesstype = 1;", '\taccesstype = (int) ns_env("NS_ACCESSTYPE", 1);')
edit("Param.cpp", "\tSARADC = false;", '\tSARADC = ns_env("NS_SARADC", 0) != 0;')
edit("Param.cpp", "\ttechnode = 22;", '\ttechnode = (int) ns_env("NS_TECHNODE", 22);')
edit(
    "Param.cpp",
    "\tnumColSubArray = 128;",
    '\tnumColSubArray = (int) ns_env("NS_NUMCOLSUBARRAY", 128);',
)
edit("Param.cpp", "\tnumColMuxed = 8;", '\tnumColMuxed = (int) ns_env("NS_COLMUX", 8);')
edit("Param.cpp", "\tlevelOutput = 32;", '\tlevelOutput = (int) pow(2, ns_env("NS_ADC_BITS", 5));')
edit(
    "Param.cpp",
    "\tcellBit = 1;                        // precision of memory device",
    '\tcellBit = (int) ns_env("NS_CELLBIT", 1);                        // precision of memory device',
)

edit(
    "SarADC.h",
    "    int levelOutput;",
    "    int levelOutput;\n    double readDynamicEnergyBias;  // cim-dse: part of readDynamicEnergy without column (cell) current",
)
edit(
    "SarADC.cpp",
    """		readDynamicEnergy = 0;
		for (double i=0; i<columnResistance.size(); i++) {
			double E_Col = 0;
			E_Col = GetColumnPower(columnResistance[i]);
			readDynamicEnergy += E_Col;
		}
		readDynamicEnergy *= numRead;""",
    """		readDynamicEnergy = 0;
		readDynamicEnergyBias = 0;
		for (double i=0; i<columnResistance.size(); i++) {
			double E_Col = 0;
			E_Col = GetColumnPower(columnResistance[i]);
			readDynamicEnergy += E_Col;
			// cim-dse: same formula with the column current term -> 0 (R = 1e30 ohm)
			if ((double) 1/columnResistance[i] != 0 && columnResistance[i] != 0) readDynamicEnergyBias += GetColumnPower(1e30);
			else readDynamicEnergyBias += E_Col;
		}
		readDynamicEnergy *= numRead;
		readDynamicEnergyBias *= numRead;""",
)
edit(
    "MultilevelSenseAmp.h",
    "    int levelOutput;",
    "    int levelOutput;\n    double readDynamicEnergyColumn;  // cim-dse: sum of P_Col*LatencyCol (column/ref current part)",
)
edit(
    "MultilevelSenseAmp.cpp",
    """		leakage = 0;
		readDynamicEnergy = 0;
		
		double LatencyCol = 0;""",
    """		leakage = 0;
		readDynamicEnergy = 0;
		readDynamicEnergyColumn = 0;
		
		double LatencyCol = 0;""",
)
edit(
    "MultilevelSenseAmp.cpp",
    "					readDynamicEnergy += MAX(P_Col*LatencyCol, 0);",
    "					readDynamicEnergy += MAX(P_Col*LatencyCol, 0);\n					readDynamicEnergyColumn += MAX(P_Col*LatencyCol, 0);",
)
edit(
    "MultilevelSenseAmp.cpp",
    "					readDynamicEnergy += MAX(P_Col*1e-9, 0);",
    "					readDynamicEnergy += MAX(P_Col*1e-9, 0);\n					readDynamicEnergyColumn += MAX(P_Col*1e-9, 0);",
)
edit(
    "MultilevelSenseAmp.cpp",
    """		readDynamicEnergy *= numRead;

	}
} 

void MultilevelSenseAmp::PrintProperty""",
    """		readDynamicEnergy *= numRead;
		readDynamicEnergyColumn *= numRead;

	}
} 

void MultilevelSenseAmp::PrintProperty""",
)
edit(
    "SubArray.cpp",
    """				readDynamicEnergyOther = wlNewSwitchMatrix.readDynamicEnergy + wlSwitchMatrix.readDynamicEnergy + ((numColMuxed > 1)==true? (mux.readDynamicEnergy + muxDecoder.readDynamicEnergy):0);
				""",
    """				readDynamicEnergyOther = wlNewSwitchMatrix.readDynamicEnergy + wlSwitchMatrix.readDynamicEnergy + ((numColMuxed > 1)==true? (mux.readDynamicEnergy + muxDecoder.readDynamicEnergy):0);
				// cim-dse instrumentation (read-only copies of the terms summed above)
				param->nsx[NSX_ARRAY] += readDynamicEnergyArray;
				param->nsx[NSX_ADC] += multilevelSenseAmp.readDynamicEnergy + multilevelSAEncoder.readDynamicEnergy + sarADC.readDynamicEnergy;
				if (SARADC) { param->nsx[NSX_ADC_CELL] += sarADC.readDynamicEnergy - sarADC.readDynamicEnergyBias; param->nsx[NSX_ADC_BIAS] += sarADC.readDynamicEnergyBias; }
				else { param->nsx[NSX_ADC_COLUMN] += multilevelSenseAmp.readDynamicEnergyColumn; param->nsx[NSX_ADC_ENCODER] += multilevelSAEncoder.readDynamicEnergy; }
				param->nsx[NSX_WL] += wlNewSwitchMatrix.readDynamicEnergy + wlSwitchMatrix.readDynamicEnergy;
				param->nsx[NSX_MUX] += ((numColMuxed > 1)==true? (mux.readDynamicEnergy + muxDecoder.readDynamicEnergy):0);
				param->nsx[NSX_SHIFTADD] += shiftAddWeight.readDynamicEnergy + shiftAddInput.readDynamicEnergy;
				param->nsx[NSX_ADDER] += adder.readDynamicEnergy;
				param->nsx[NSX_DFF] += dff.readDynamicEnergy;
				param->nsx[NSX_NCONV] += columnResistance.size() * numAdd;
				param->nsx[NSX_NSUBARRAY_READ] += 1;
				""",
)
edit(
    "AdderTree.cpp",
    """		readDynamicEnergy *= numAdderTree;	
		readDynamicEnergy *= numRead;
		leakage *= numAdderTree;""",
    """		readDynamicEnergy *= numAdderTree;	
		readDynamicEnergy *= numRead;
		leakage *= numAdderTree;
		param->nsx[NSX_ADDERTREE_E] += readDynamicEnergy;   // cim-dse
		param->nsx[NSX_ADDERTREE_N] += numRead * numAdderTree * ((numUnitAdd ? numUnitAdd : numSubcoreRow) - 1);  // operand additions""",
)
edit(
    "Buffer.cpp",
    """		readDynamicEnergy = avgBitReadDynamicEnergy*numAccessBitRead*numRead;
		writeDynamicEnergy = avgBitWriteDynamicEnergy*numAccessBitWrite*numWrite;""",
    """		readDynamicEnergy = avgBitReadDynamicEnergy*numAccessBitRead*numRead;
		writeDynamicEnergy = avgBitWriteDynamicEnergy*numAccessBitWrite*numWrite;
		param->nsx[NSX_BUFFER_E] += readDynamicEnergy + writeDynamicEnergy;   // cim-dse
		param->nsx[NSX_BUFFER_BITS] += numAccessBitRead*numRead + numAccessBitWrite*numWrite;""",
)
edit(
    "Bus.cpp",
    "		readDynamicEnergy *= numBitAccess*numRead;",
    "		readDynamicEnergy *= numBitAccess*numRead;\n		param->nsx[NSX_BUS_E] += readDynamicEnergy; param->nsx[NSX_BUS_BITS] += numBitAccess*numRead;   // cim-dse",
)
edit(
    "HTree.cpp",
    """			readDynamicEnergy *= numBitAccess;
		}
		readDynamicEnergy *= numRead;
	}
}""",
    """			readDynamicEnergy *= numBitAccess;
		}
		readDynamicEnergy *= numRead;
		param->nsx[NSX_HTREE_E] += readDynamicEnergy; param->nsx[NSX_HTREE_BITS] += numBitAccess*numRead;   // cim-dse
	}
}""",
)
edit(
    "XYBus.cpp",
    "		readDynamicEnergy = readDynamicEnergyInput * numBitInput + readDynamicEnergyOutput * numBitOutput;",
    "		readDynamicEnergy = readDynamicEnergyInput * numBitInput + readDynamicEnergyOutput * numBitOutput;\n"
    "		param->nsx[NSX_XYBUS_E] += readDynamicEnergy; param->nsx[NSX_XYBUS_BITS] += numBitInput + numBitOutput;   // cim-dse",
)

# ---- main.cpp: print the accumulators per layer, unit areas/latencies of the building blocks
edit(
    "main.cpp",
    "vector<vector<double> > getNetStructure(const string &inputfile);\n",
    """vector<vector<double> > getNetStructure(const string &inputfile);

// cim-dse instrumentation: building blocks defined in Tile.cpp / ProcessingUnit.cpp / Chip.cpp
extern SubArray *subArrayInPE;
extern Buffer *inputBufferCM, *outputBufferCM, *inputBufferNM, *outputBufferNM, *globalBuffer;
extern HTree *hTreeCM, *hTreeNM, *GhTree;
extern AdderTree *accumulationCM, *accumulationNM, *adderTreeCM, *adderTreeNM, *Gaccumulation;
extern Bus *busInputCM, *busOutputCM, *busInputNM, *busOutputNM;
extern DFF *bufferInputCM, *bufferOutputCM, *bufferInputNM, *bufferOutputNM;
extern XYBus *GBus;
extern MaxPooling *maxPool;
extern BitShifter *GreLu, *reLuCM, *reLuNM;
static const char *NSX_NAMES[NSX_N] = {"array_wl_J", "adc_J", "adc_cell_current_J", "adc_column_power_J", "adc_encoder_J",
	"wl_switchmatrix_J", "mux_J", "shiftadd_J", "subarray_adder_J", "subarray_dff_J", "adc_conversions", "subarray_reads",
	"addertree_J", "addertree_adds", "buffer_J", "buffer_bits", "htree_J", "htree_bits", "bus_J", "bus_bits", "xybus_J", "xybus_bits", "adc_bias_J"};
static void ns_dump(int layer) {
	for (int k = 0; k < NSX_N; k++) { cout << "NSX layer" << layer+1 << " " << NSX_NAMES[k] << " " << param->nsx[k] << endl; param->nsx[k] = 0; }
}
static void ns_area(const char *name, double a) { cout << "NSA " << name << " " << a*1e12 << endl; }
""",
)
edit(
    "main.cpp",
    """    cout << "-------------------------------------- Hardware Performance --------------------------------------" <<  endl;  
""",
    """    // cim-dse: unit latencies of the last subarray evaluated in the clock pass, then reset the accumulators
    cout << "NSL sarADC_s " << subArrayInPE->sarADC.readLatency << endl;
    cout << "NSL multilevelSenseAmp_s " << subArrayInPE->multilevelSenseAmp.readLatency << endl;
    cout << "NSL multilevelSAEncoder_s " << subArrayInPE->multilevelSAEncoder.readLatency << endl;
    cout << "NSL wlSwitchMatrix_s " << subArrayInPE->wlSwitchMatrix.readLatency << endl;
    cout << "NSL wlNewSwitchMatrix_s " << subArrayInPE->wlNewSwitchMatrix.readLatency << endl;
    cout << "NSL mux_s " << subArrayInPE->mux.readLatency << endl;
    cout << "NSL muxDecoder_s " << subArrayInPE->muxDecoder.readLatency << endl;
    cout << "NSL subarray_read_s " << subArrayInPE->readLatency << endl;
    cout << "NSL clkPeriod_s " << clkPeriod << endl;
    for (int k = 0; k < NSX_N; k++) param->nsx[k] = 0;
    cout << "-------------------------------------- Hardware Performance --------------------------------------" <<  endl;  
""",
)
edit(
    "main.cpp",
    """&coreEnergyADC, &coreEnergyAccum, &coreEnergyOther, false, &layerclkPeriod);""",
    """&coreEnergyADC, &coreEnergyAccum, &coreEnergyOther, false, &layerclkPeriod);
            ns_dump(i);""",
    count=2,
)
edit(
    "main.cpp",
    """    chipAreaArray = chipAreaResults[5];
""",
    """    chipAreaArray = chipAreaResults[5];

    // cim-dse: unit areas (um^2) of the building blocks; chip totals = unit x count (see FloorPlan)
    cout << "NSF numTileRow " << numTileRow << endl << "NSF numTileCol " << numTileCol << endl;
    cout << "NSF desiredNumTileNM " << desiredNumTileNM << endl << "NSF desiredPESizeNM " << desiredPESizeNM << endl << "NSF numPENM " << numPENM << endl;
    cout << "NSF desiredNumTileCM " << desiredNumTileCM << endl << "NSF desiredTileSizeCM " << desiredTileSizeCM << endl << "NSF desiredPESizeCM " << desiredPESizeCM << endl;
    cout << "NSF chipHeight_um " << chipHeight*1e6 << endl << "NSF chipWidth_um " << chipWidth*1e6 << endl;
    cout << "NSF CMTile_um2 " << CMTileheight*CMTilewidth*1e12 << endl << "NSF NMTile_um2 " << NMTileheight*NMTilewidth*1e12 << endl;
    ns_area("subarray", subArrayInPE->usedArea > 0 ? subArrayInPE->usedArea : subArrayInPE->area);
    ns_area("subarray_total", subArrayInPE->area);
    ns_area("subarray_array", subArrayInPE->areaArray);
    ns_area("subarray_adc_group", subArrayInPE->areaADC);
    ns_area("subarray_accum_group", subArrayInPE->areaAccum);
    ns_area("subarray_other_group", subArrayInPE->areaOther);
    ns_area("subarray_sarADC", subArrayInPE->sarADC.area);
    ns_area("subarray_multilevelSenseAmp", subArrayInPE->multilevelSenseAmp.area);
    ns_area("subarray_multilevelSAEncoder", subArrayInPE->multilevelSAEncoder.area);
    ns_area("subarray_mux", subArrayInPE->mux.area);
    ns_area("subarray_muxDecoder", subArrayInPE->muxDecoder.area);
    ns_area("subarray_wlSwitchMatrix", subArrayInPE->wlSwitchMatrix.area);
    ns_area("subarray_wlNewSwitchMatrix", subArrayInPE->wlNewSwitchMatrix.area);
    ns_area("subarray_slSwitchMatrix", subArrayInPE->slSwitchMatrix.area);
    ns_area("subarray_shiftAdd", subArrayInPE->shiftAddWeight.area + subArrayInPE->shiftAddInput.area);
    ns_area("subarray_adder", subArrayInPE->adder.area);
    ns_area("subarray_dff", subArrayInPE->dff.area);
    ns_area("pe_adderTreeCM", adderTreeCM->area); ns_area("pe_adderTreeNM", adderTreeNM->area);
    ns_area("pe_bufferInputCM", bufferInputCM->area); ns_area("pe_bufferOutputCM", bufferOutputCM->area);
    ns_area("pe_bufferInputNM", bufferInputNM->area); ns_area("pe_bufferOutputNM", bufferOutputNM->area);
    ns_area("pe_busInputCM", busInputCM->area); ns_area("pe_busOutputCM", busOutputCM->area);
    ns_area("pe_busInputNM", busInputNM->area); ns_area("pe_busOutputNM", busOutputNM->area);
    ns_area("tile_inputBufferCM", inputBufferCM->area); ns_area("tile_outputBufferCM", outputBufferCM->area);
    ns_area("tile_inputBufferNM", inputBufferNM->area); ns_area("tile_outputBufferNM", outputBufferNM->area);
    ns_area("tile_hTreeCM", hTreeCM->area); ns_area("tile_hTreeNM", hTreeNM->area);
    ns_area("tile_accumulationCM", accumulationCM->area); ns_area("tile_accumulationNM", accumulationNM->area);
    ns_area("chip_globalBuffer", globalBuffer->area);
    ns_area("chip_GBus", param->globalBusType ? 0 : GBus->area); ns_area("chip_GhTree", param->globalBusType ? GhTree->area : 0);
    ns_area("chip_Gaccumulation", Gaccumulation->area); ns_area("chip_maxPool", maxPool->area); ns_area("chip_GreLu", GreLu->area);
    cout << "NSU buffer_avgBitRead_J " << globalBuffer->avgBitReadDynamicEnergy << endl;
""",
)
edit(
    "main.cpp",
    '#include "SubArray.h"\n',
    '#include "SubArray.h"\n#include "MaxPooling.h"\n#include "BitShifter.h"\n#include "AdderTree.h"\n#include "Buffer.h"\n#include "HTree.h"\n#include "XYBus.h"\n#include "Bus.h"\n#include "DFF.h"\n',
)
edit(
    "main.cpp",
    '    ns_area("subarray", subArrayInPE->usedArea > 0 ? subArrayInPE->usedArea : subArrayInPE->area);\n',
    "",
)
edit("Param.cpp", "\tpipeline = true; ", '\tpipeline = ns_env("NS_PIPELINE", 1) != 0; ')
edit("Param.cpp", "\tnovelMapping = true; ", '\tnovelMapping = ns_env("NS_NOVELMAPPING", 1) != 0; ')

# ---- duplication knobs (no-duplication variant of the grid)
# NS_SPEEDUP -> speedUpDegree (stock 8). Note: Chip.cpp ChipDesignInitialize clamps it to int(maxIFM/minIFM over conv
# layers), which is 1 for all our nets (MLP: no conv; CNNs: 10/6), so it alone changes nothing here.
edit("Param.cpp", "\tspeedUpDegree = 8; ", '\tspeedUpDegree = (int) ns_env("NS_SPEEDUP", 8); ')
# NS_DUPLICATION=0 -> Chip.cpp PEDesign / SubArrayDup report 1 copy per layer (stock: copies of a small layer fill the
# idle PEs of its tile / subarrays of its PE, and Tile/PE latency is divided by the copy count). The floorplan
# (PE/tile size choice, which uses the duplicated totals for its utilisation score) is left exactly as stock.
edit(
    "Param.h",
    "\tdouble nsx[32];\n",
    "\tdouble nsx[32];\n\tint nsDuplication;   // cim-dse: 0 = no PE/subarray weight duplication (NS_DUPLICATION, default 1 = stock)\n",
)
edit(
    "Param.cpp",
    "\tfor (int i = 0; i < 32; i++) nsx[i] = 0;\n",
    '\tfor (int i = 0; i < 32; i++) nsx[i] = 0;\n\tnsDuplication = (int) ns_env("NS_DUPLICATION", 1);\n',
)
edit(
    "Chip.cpp",
    "\t\tpeDupRow.push_back(actualDupRow);\n",
    "\t\tif (!param->nsDuplication) { actualDupRow = 1; actualDupCol = 1; }   // cim-dse: no duplication (after the utilisation sum)\n\t\tpeDupRow.push_back(actualDupRow);\n",
)
edit(
    "Chip.cpp",
    "\t\tsubArrayDupRow.push_back(actualDupRow);\n",
    "\t\tif (!param->nsDuplication) { actualDupRow = 1; actualDupCol = 1; }   // cim-dse: no duplication\n\t\tsubArrayDupRow.push_back(actualDupRow);\n",
)
# Tile.cpp conventional-mapping "no duplication" branch: the stock loop over the numPE x numPE PE slots adds the
# PE energies (read, buffer, IC, core*) OUTSIDE the "slot holds weights" test, so every empty slot re-adds the last
# computed PE's energy. Stock never reaches it with empty slots for our small layers (they take the duplication
# branch); with NS_DUPLICATION=0 they do, so in that mode empty slots are skipped (stock behaviour unchanged otherwise).
edit(
    "Tile.cpp",
    """											&peLatencyADC, &peLatencyAccum, &peLatencyOther, &peEnergyADC, &peEnergyAccum, &peEnergyOther, CalculateclkFreq, clkPeriod);

					}
					*readLatency = max(PEreadLatency, (*readLatency));
""",
    """											&peLatencyADC, &peLatencyAccum, &peLatencyOther, &peEnergyADC, &peEnergyAccum, &peEnergyOther, CalculateclkFreq, clkPeriod);

					}
					if (!param->nsDuplication && !((i*peSize < weightMatrixRow) && (j*peSize < weightMatrixCol))) continue;   // cim-dse: empty PE slot adds nothing
					*readLatency = max(PEreadLatency, (*readLatency));
""",
)
